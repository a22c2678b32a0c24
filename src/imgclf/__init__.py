"""Image classification as a web service: FastAPI pages and API, a Redis/RQ queue, PyTorch workers."""

__version__ = "0.1.0"
