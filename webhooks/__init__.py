"""The FastAPI app: routes verify, parse, enqueue and answer. No business logic, no chat sends in a request."""
