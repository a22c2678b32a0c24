"""Models: which exist, how they load, which runtime runs them, and the one pipeline.

registry.py    the models the service knows and where their weights are (no torch: the web uses it)
classifier.py  preprocess -> predict -> top-k, one interface for every model and runtime
loading.py     a `ModelSpec` and its weights on disk -> a torch `Classifier`
runtimes.py    the same model on ONNX Runtime or OpenVINO, used only if it agrees with torch
serving.py     a model loaded and moved to its runtime, as workers and `imgclf classify` serve it
pipeline.py    the one pipeline: image file -> decode -> preprocess -> forward -> top-k

Everything but `registry` imports torch: the worker side only.
"""
