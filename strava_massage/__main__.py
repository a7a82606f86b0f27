"""`python -m strava_massage` runs the command line."""

from strava_massage.cli import main

main()
