"""Data the insights keep of their own (statistics are computed from bookings in the database)."""
