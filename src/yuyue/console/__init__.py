"""The merchant console: staff run their day here (bookings, schedules, check-in, export)."""
