"""Test data: a synthetic Strava export and the script that makes it."""
