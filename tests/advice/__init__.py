"""The advice evaluation suite: realistic training histories replayed through the real rules.

`histories` generates six runners' histories, `test_properties` checks what a coach would check
over each whole sequence of notes, and `report` prints a summary of the replays.
"""
