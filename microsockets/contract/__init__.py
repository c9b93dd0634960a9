"""One typed contract from handler to browser: validation, AsyncAPI, TypeScript (docs/typing.md).

Nothing here imports pydantic or msgspec until an annotation needs one of them.
"""
