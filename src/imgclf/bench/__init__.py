"""`imgclf bench`: what the service costs, measured in one run on one machine.

runner.py    the whole run: model only, pipeline, ceiling, workers, end to end, synchronous reference,
             baseline, memory
ceiling.py   the pipeline ceiling: N processes running the pipeline, no HTTP, no queue
sync_reference.py  what the same cores serve without a queue: a server classifying inside the request
load.py      the HTTP load generator (asyncio + aiohttp) for the end-to-end parts
agreement.py top-5 agreement of the Pillow + numpy preprocessing with the torch transforms it replaced
redis_cost.py  Redis commands, round trips, bytes and memory per job, counted on a running service
baseline.py  the lesson's design: a forking RQ worker that builds the model in every job
stats.py     timing loops, medians and percentiles
report.py    docs/benchmarks.md, the plot and the raw JSON
"""
