"""`orderhub demo`: the simulated business day (day.py), its chat transcript (chat.py), the sample orders (also used
by bench/) and the console channel that prints the chat."""
