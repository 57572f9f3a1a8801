"""The kinds of run the dashboard shows, each one session object behind :class:`RunSession`."""
