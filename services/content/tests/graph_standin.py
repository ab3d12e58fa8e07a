"""A local stand-in for the Instagram Graph API (CHANNELS.md §2), on loopback, for tests: it speaks the
documented JSON of the Content Publishing API (`POST /{ig}/media`, `GET /{container}?fields=status_code`,
`POST /{ig}/media_publish`, `GET /{ig}/content_publishing_limit`) and of account insights
(`GET /{ig}/insights`), checks the Bearer token, and lets a test script failures: the next answers of an
endpoint (a Graph error, a 5xx), a publish that happens but whose answer is a 500, containers that stay
IN_PROGRESS for a few polls, the publishing quota."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from litestar import Litestar, Request, Response, get, post
from shared.testing import free_port


def graph_error(code: int, message: str, type_: str = "OAuthException", subcode: int | None = None) -> dict:
    err: dict[str, Any] = {"message": message, "type": type_, "code": code, "fbtrace_id": "AmFGcW_3hwDB7qFbl"}
    if subcode is not None:
        err["error_subcode"] = subcode
    return {"error": err}


EXPIRED_TOKEN = graph_error(190, "Error validating access token: Session has expired on Tuesday, 01-Dec-26.",
                            subcode=463)
RATE_LIMITED = graph_error(4, "(#4) Application request limit reached")
INVALID_PARAMETER = graph_error(100, "Invalid parameter", type_="OAuthException", subcode=2207052)


@dataclass
class GraphState:
    accounts: dict[str, dict[str, str]] = field(default_factory=dict)  # ig id → {"token", "username"}
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)
    posts: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    scripted: dict[str, list[tuple[int, dict]]] = field(default_factory=dict)  # endpoint → next answers
    publish_then_fail: int = 0      # the next N publishes happen, but answer 500
    in_progress_polls: int = 0      # new containers answer IN_PROGRESS this many times first
    quota_total: int = 100
    quota_extra_usage: int = 0      # posts published in the last 24 h by other means
    daily: dict[int, dict[str, int]] = field(default_factory=dict)  # `since` (unix) → metric → total value
    followers: list[tuple[str, int]] = field(default_factory=list)  # (end_time, follower_count)
    ids: Any = field(default_factory=lambda: itertools.count(17_900_000_000_000_001))

    def calls(self, endpoint: str) -> int:
        return sum(1 for _m, e, _p in self.requests if e == endpoint)


class GraphStandIn:
    def __init__(self) -> None:
        self.state = GraphState()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app(), host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> GraphStandIn:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the Graph stand-in did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def account(self, ig_user_id: str, token: str, username: str = "aigerim.cakes") -> None:
        self.state.accounts[ig_user_id] = {"token": token, "username": username}

    def script(self, endpoint: str, *answers: tuple[int, dict]) -> None:
        self.state.scripted.setdefault(endpoint, []).extend(answers)

    # ------------------------------------------------------------------ the ASGI app

    def app(self) -> Litestar:
        s = self.state

        async def params_of(request: Request) -> dict[str, Any]:
            params = dict(request.query_params)
            if request.method == "POST":
                params |= dict(await request.form())
            return params

        def authorised(request: Request, ig: str) -> bool:
            header = request.headers.get("authorization", "")
            token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
            owner = ig if ig in s.accounts else next(
                (c["ig"] for cid, c in s.containers.items() if cid == ig),
                next((p["ig"] for p in s.posts if p["id"] == ig), None))
            return owner is not None and s.accounts.get(owner, {}).get("token") == token

        async def begin(request: Request, endpoint: str, node: str) -> tuple[dict[str, Any], Response | None]:
            params = await params_of(request)
            s.requests.append((request.method, endpoint, params))
            if s.scripted.get(endpoint):
                status, body = s.scripted[endpoint].pop(0)
                return params, Response(body, status_code=status)
            if not authorised(request, node):
                return params, Response(EXPIRED_TOKEN, status_code=400)
            return params, None

        @get("/{node:str}")
        async def read_node(node: str, request: Request) -> Response:
            _params, early = await begin(request, "node", node)
            if early is not None:
                return early
            if node in s.accounts:
                return Response({"id": node, "username": s.accounts[node]["username"]})
            if node in s.containers:
                c = s.containers[node]
                if c["status_code"] == "IN_PROGRESS":
                    if c["polls_left"] > 0:
                        c["polls_left"] -= 1
                        return Response({"id": node, "status_code": "IN_PROGRESS", "status": "In progress"})
                    c["status_code"] = "FINISHED"
                return Response({"id": node, "status_code": c["status_code"], "status": c["status_code"].title()})
            post_ = next((p for p in s.posts if p["id"] == node), None)
            if post_ is not None:
                return Response({"id": node, "permalink": post_["permalink"], "timestamp": post_["timestamp"]})
            return Response(graph_error(100, "Unsupported get request.", type_="GraphMethodException", subcode=33),
                            status_code=400)

        @post("/{ig:str}/media")
        async def create(ig: str, request: Request) -> Response:
            params, early = await begin(request, "media", ig)
            if early is not None:
                return early
            if not (params.get("image_url") or params.get("video_url") or params.get("children")):
                return Response(graph_error(100, "The parameter image_url is required."), status_code=400)
            cid = str(next(s.ids))
            s.containers[cid] = {"ig": ig, "params": params, "published": False,
                                 "status_code": "IN_PROGRESS" if s.in_progress_polls else "FINISHED",
                                 "polls_left": s.in_progress_polls}
            return Response({"id": cid})

        @post("/{ig:str}/media_publish")
        async def publish(ig: str, request: Request) -> Response:
            params, early = await begin(request, "media_publish", ig)
            if early is not None:
                return early
            c = s.containers.get(str(params.get("creation_id")))
            if c is None or c["ig"] != ig:
                return Response(graph_error(100, "Invalid parameter", subcode=2207027), status_code=400)
            if c["status_code"] == "PUBLISHED":
                return Response(graph_error(9007, "Media ID is not available", subcode=2207027), status_code=400)
            if c["status_code"] != "FINISHED":
                return Response(graph_error(9007, "Media ID is not available", subcode=2207027), status_code=400)
            used = sum(1 for p in s.posts if p["ig"] == ig) + s.quota_extra_usage
            if used >= s.quota_total:
                return Response(graph_error(9, "Application request limit reached", subcode=2207042),
                                status_code=400)
            media_id = str(next(s.ids))
            c["status_code"], c["published"] = "PUBLISHED", True
            s.posts.append({"id": media_id, "ig": ig, "container": params["creation_id"], "params": c["params"],
                            "permalink": f"https://www.instagram.com/p/{media_id[-8:]}/",
                            "timestamp": datetime.now(UTC).isoformat()})
            if s.publish_then_fail:
                s.publish_then_fail -= 1
                return Response({"error": "upstream"}, status_code=500)
            return Response({"id": media_id})

        @get("/{ig:str}/content_publishing_limit")
        async def limit(ig: str, request: Request) -> Response:
            _params, early = await begin(request, "content_publishing_limit", ig)
            if early is not None:
                return early
            used = sum(1 for p in s.posts if p["ig"] == ig) + s.quota_extra_usage
            return Response({"data": [{"quota_usage": used,
                                       "config": {"quota_total": s.quota_total, "quota_duration": 86400}}]})

        @get("/{ig:str}/insights")
        async def insights(ig: str, request: Request) -> Response:
            params, early = await begin(request, "insights", ig)
            if early is not None:
                return early
            metrics = str(params.get("metric", "")).split(",")
            since, until = int(params.get("since", 0)), int(params.get("until", 0))
            data = []
            if params.get("metric_type") == "total_value":
                day = s.daily.get(since, {})
                data = [{"name": m, "period": "day", "title": m.title(), "total_value": {"value": day[m]},
                         "id": f"{ig}/insights/{m}/day"} for m in metrics if m in day]
            elif "follower_count" in metrics and s.followers:
                values = [{"value": v, "end_time": t} for t, v in s.followers
                          if since < datetime.fromisoformat(t.replace("+0000", "+00:00")).timestamp() <= until]
                data = [{"name": "follower_count", "period": "day", "values": values, "title": "Follower Count",
                         "id": f"{ig}/insights/follower_count/day"}]
            return Response({"data": data})

        return Litestar([read_node, create, publish, limit, insights], debug=False)
