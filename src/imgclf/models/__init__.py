"""Models: which exist, how they load, which runtime runs them, and the one pipeline.

registry.py       the models the service knows and where their weights are (the web uses it)
classifier.py     preprocess -> predict -> top-k, one interface for every model and runtime
preprocessing.py  resize, centre crop, scale, normalise in Pillow + numpy (no torch on the job path)
manifest.py       an exported model as a worker finds it: the ONNX file and what it was made from
runtimes.py       the export on ONNX Runtime or OpenVINO, used only if it gives the manifest's answers
serving.py        a model on its runtime, as workers and `imgclf classify` serve it
pipeline.py       the one pipeline: image file -> decode -> preprocess -> forward -> top-k
loading.py        a `ModelSpec` and its weights on disk -> a torch `Classifier`
export.py         a torch model -> ONNX + manifest, once, at `imgclf prepare`

Only loading.py and export.py import torch (serving.py imports loading only when no export can be
served or IMGCLF_RUNTIME=torch): a worker serving exports never loads it.
"""
