"""Everything that talks to Strava: the client, the rate budget, tokens, subscription."""
