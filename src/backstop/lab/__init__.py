"""The stress lab's commands: they wire the simulations of :mod:`backstop.sim` to the reports
of :mod:`backstop.report` (``sim/`` imports neither ``api/`` nor ``report/``)."""
