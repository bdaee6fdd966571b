"""What a long-running process is: `orderhub serve` and `scheduler` (serve.py), the ASGI app every `orderhub api`
worker builds (asgi.py), the chat parts each process kind plays (chat_runtime.py), its event loop and GC settings."""
