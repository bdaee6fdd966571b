"""Pure domain: no I/O, no clock reads. Time is always passed in."""
