"""The inside of Argus: records, windows, profiles, risk and alerts. Stdlib, attrs and numpy only."""
