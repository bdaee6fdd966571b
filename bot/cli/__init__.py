"""`orderhub`, the command line: the root app (main.py), one module per command group, and the readers of the files
`orderhub import` and `orderhub stock import` take."""
