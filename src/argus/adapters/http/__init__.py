"""The Falcon HTTP edge."""
