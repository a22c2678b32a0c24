"""Pure ASGI layers around the routes (see `imgclf.web.app._add_edge_middleware` for their order)."""
