"""`imgclf bench`: what the service costs, measured in one run on one machine.

runner.py    the whole run: model only, pipeline, workers, end to end, baseline, memory
load.py      the HTTP load generator (asyncio + aiohttp) for the end-to-end part
baseline.py  the lesson's design: a forking RQ worker that builds the model in every job
stats.py     timing loops, medians and percentiles
report.py    docs/benchmarks.md, the plot and the raw JSON
"""
