"""Entry points: CLI, gunicorn app factory, engine process and the one DI container."""
