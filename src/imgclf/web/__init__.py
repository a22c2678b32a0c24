"""The web process (never imports torch): the FastAPI app, its edge and its routes.

app.py            create_app: lifespan, error handlers, middleware, routers
state.py          what routes get from the running app (`StateDep`, `ChoicesDep`)
choices.py        what a user may pick, and why an id may not be picked
server.py         `imgclf web`: uvicorn with limits on request heads
openapi.py        the documented error answers shared by every route
error_response.py the two error shapes: problem details under /api/v1, {"detail"} elsewhere
intake.py         request fields -> an order for the queue (catalogue photo or inspected upload)
origin.py         the cross-site (CSRF) check of form posts
downloads.py      what a finished classification offers to save (JSON, PNG card, photo) and file names
result_card.py    a finished classification as a 1200 x 630 PNG card, drawn with Pillow
wording.py        how results and settings are said to people, the same on pages and cards
middleware/       pure ASGI layers: security headers, JSON 500, HEAD, body limits
api/              JSON routes: the lesson's contract, the operators' routes, and v1/ (the versioned API)
pages/            HTML routes, templates/ and static/ (every asset vendored, no CDN)
"""
