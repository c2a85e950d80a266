"""A FastAPI application served through Mangum: the way web apps are deployed behind function URLs."""

import hashlib

from fastapi import Cookie, FastAPI, HTTPException, Query, Request, Response
from mangum import Mangum
from pydantic import BaseModel

app = FastAPI(title="lamina-webapp")
ITEMS: dict[int, dict] = {}


class Item(BaseModel):
    name: str
    price: float


@app.get("/")
def index() -> dict:
    return {"app": "lamina-webapp"}


@app.post("/items/{item_id}", status_code=201)
def put_item(item_id: int, item: Item) -> dict:
    ITEMS[item_id] = item.model_dump()
    return {"id": item_id, **ITEMS[item_id]}


@app.get("/items/{item_id}")
def get_item(item_id: int, fields: str | None = None) -> dict:
    if item_id not in ITEMS:
        raise HTTPException(status_code=404, detail="no such item")
    item = {"id": item_id, **ITEMS[item_id]}
    if fields:
        item = {k: v for k, v in item.items() if k in fields.split(",")}
    return item


@app.get("/search")
def search(tag: list[str] = Query([]), q: str = "") -> dict:  # noqa: B008 (FastAPI style)
    return {"q": q, "tags": tag}


@app.post("/upload")
async def upload(request: Request) -> Response:
    data = await request.body()
    return Response(
        content=data[::-1],
        media_type="application/octet-stream",
        headers={"x-sha256": hashlib.sha256(data).hexdigest()},
    )


@app.post("/login")
def login(response: Response) -> dict:
    response.set_cookie("session", "s3cr3t", httponly=True)
    response.set_cookie("theme", "dark")
    return {"logged_in": True}


@app.get("/me")
def me(session: str | None = Cookie(None), theme: str | None = Cookie(None)) -> dict:
    return {"session": session, "theme": theme}


@app.get("/boom")
def boom() -> dict:
    raise RuntimeError("the handler failed")


handler = Mangum(app, lifespan="off")
