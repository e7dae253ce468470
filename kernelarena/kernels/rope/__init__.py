"""Rotary position embedding with a cos/sin cache, NeoX style (halves rotated), on queries and keys."""
