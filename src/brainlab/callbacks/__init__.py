"""Callbacks any phase gets: the target table and spike statistics."""
