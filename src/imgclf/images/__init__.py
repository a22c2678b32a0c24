"""Images: ids from requests -> files, and files -> RGB pictures, with limits.

catalogue.py  the catalogue: an image id becomes a file only through a listing of its folder
decoding.py   bytes -> an upright RGB picture, bounded, with errors that are the user's to fix
uploads.py    an uploaded file's bytes -> its type (from the bytes), size, SHA-256 and a re-encoded copy
digests.py    SHA-256 of files, remembered while they do not change (the result cache's key)
samples.py    the photos installed packages ship: an offline catalogue
adjustments.py  brightness, contrast, colour, rotation, flip: parsed, named for the cache, applied
histogram.py  red, green, blue and luminance histograms of the pixels the model saw
"""
