"""OAuth 2.0 endpoints: token (+ JSON alias), introspection, revocation, JWKS, metadata.

Thin: parse the request, call :class:`auth.tokens.TokenService`, shape the RFC response.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from auth.tokens import ClientCredentials, OAuthError, TokenService, invalid_client
from base.openapi import body, empty, merged, oauth_errors

router = APIRouter()
OAUTH_ERRORS = oauth_errors(400, 401, 429, 503)
_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["client_credentials"]},
                        "scope": {"type": "string"},
                        "client_id": {"type": "string"},
                        "client_secret": {"type": "string"},
                        "token": {"type": "string"},
                        "token_type_hint": {"type": "string"},
                    },
                }
            }
        },
    }
}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
GRANT = "client_credentials"


def oauth_error_response(exc: OAuthError) -> JSONResponse:
    """A §5.2 error body with ``no-store`` and any challenge headers."""
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description},
        status_code=exc.status_code,
        headers={**NO_STORE, **exc.headers},
    )


def _service(request: Request) -> TokenService:
    service: TokenService = request.app.state.runtime.tokens
    return service


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    body = (await request.body()).decode("utf-8", errors="strict")
    params: dict[str, str] = {}
    for name, value in parse_qsl(body, keep_blank_values=True):
        if name in params:  # §3.2: parameters MUST NOT be included more than once
            raise OAuthError("invalid_request", f"parameter {name!r} is repeated")
        params[name] = value
    return params


def _credentials(request: Request, params: dict[str, str]) -> ClientCredentials:
    header = request.headers.get("authorization")
    in_body = "client_secret" in params
    if header is not None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise invalid_client("use HTTP Basic or client_secret_post to authenticate")
        if in_body:
            raise OAuthError("invalid_request", "use one client authentication method, not two")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise invalid_client("malformed Basic credentials") from exc
        raw_id, sep, raw_secret = decoded.partition(":")
        if not sep:
            raise invalid_client("malformed Basic credentials")
        # §2.3.1: id and secret are form-urlencoded before Basic encoding.
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if params.get("client_id", client_id) != client_id:
            raise OAuthError("invalid_request", "client_id in the body differs from Basic auth")
        method = "client_secret_basic"
    elif in_body and params.get("client_id"):
        client_id, secret, method = (
            params["client_id"],
            params["client_secret"],
            "client_secret_post",
        )
    else:
        raise invalid_client("client authentication is required")
    if not client_id or not secret:
        raise invalid_client()
    return ClientCredentials(client_id, secret, method, source_of(request))


def source_of(request: Request) -> str:
    """The address a request came from, as the server saw it (no forwarding headers: a proxy
    in front would make every client one source)."""
    return request.client.host if request.client is not None else "unknown"


@router.post(
    "/oauth2/token",
    tags=["oauth2"],
    responses=merged(body(200, "application/json"), OAUTH_ERRORS),
    openapi_extra=_FORM,
)
async def token(request: Request) -> Response:
    """RFC 6749 §4.4 client credentials grant."""
    try:
        params = await _form(request)
        grant = params.get("grant_type")
        if not grant:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant != GRANT:
            raise OAuthError("unsupported_grant_type", f"only {GRANT} is supported")
        creds = _credentials(request, params)
        issued = await _service(request).issue(creds, params.get("scope"))
    except OAuthError as exc:
        return oauth_error_response(exc)
    except UnicodeDecodeError:
        return oauth_error_response(OAuthError("invalid_request", "the body is not UTF-8"))
    return JSONResponse(issued.body(), headers=NO_STORE)


@router.post(
    "/api/v1/auth/token",
    tags=["oauth2"],
    responses=merged(body(200, "application/json"), OAUTH_ERRORS),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def token_json(request: Request) -> Response:
    """The earlier JSON token endpoint, kept for its clients: ``{client_id, client_secret}``."""
    try:
        try:
            body: Any = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            raise OAuthError("invalid_request", "the body must be a JSON object") from exc
        if not isinstance(body, dict):
            raise OAuthError("invalid_request", "the body must be a JSON object")
        client_id, secret, scope = (
            body.get("client_id"),
            body.get("client_secret"),
            body.get("scope"),
        )
        if not isinstance(client_id, str) or not isinstance(secret, str):
            raise invalid_client("client_id and client_secret are required")
        if scope is not None and not isinstance(scope, str):
            raise OAuthError("invalid_request", "scope must be a string")
        grant = body.get("grant_type", GRANT)
        if grant != GRANT:
            raise OAuthError("unsupported_grant_type", f"only {GRANT} is supported")
        issued = await _service(request).issue(
            ClientCredentials(client_id, secret, "json", source_of(request)), scope
        )
    except OAuthError as exc:
        return oauth_error_response(exc)
    return JSONResponse(issued.body(), headers=NO_STORE)


@router.post(
    "/oauth2/introspect",
    tags=["oauth2"],
    responses=merged(body(200, "application/json"), OAUTH_ERRORS),
    openapi_extra=_FORM,
)
async def introspect(request: Request) -> Response:
    """RFC 7662 token introspection; the caller authenticates as a client."""
    try:
        params = await _form(request)
        creds = _credentials(request, params)
        if not params.get("token"):
            raise OAuthError("invalid_request", "token is required")
        answer = await _service(request).introspect(creds, params["token"])
    except OAuthError as exc:
        return oauth_error_response(exc)
    return JSONResponse(answer, headers=NO_STORE)


@router.post(
    "/oauth2/revoke",
    tags=["oauth2"],
    responses=merged(empty(200), OAUTH_ERRORS),
    openapi_extra=_FORM,
)
async def revoke(request: Request) -> Response:
    """RFC 7009 token revocation: 200 whether or not the token was valid."""
    try:
        params = await _form(request)
        creds = _credentials(request, params)
        if "token" not in params:
            raise OAuthError("invalid_request", "token is required")
        hint = params.get("token_type_hint")
        if hint not in (None, "access_token", "refresh_token"):
            raise OAuthError("unsupported_token_type", f"token type {hint!r} is not supported")
        await _service(request).revoke(creds, params["token"])
    except OAuthError as exc:
        return oauth_error_response(exc)
    return Response(status_code=200, headers=NO_STORE)


@router.get(
    "/.well-known/jwks.json",
    tags=["discovery"],
    responses=body(200, "application/jwk-set+json"),
)
async def jwks(request: Request) -> Response:
    """Every published key; cacheable for a short while (verifiers refetch on unknown kid)."""
    runtime = request.app.state.runtime
    max_age = int(runtime.auth_settings.jwks_max_age.total_seconds())
    return JSONResponse(
        runtime.keys.jwks(),
        headers={"Cache-Control": f"public, max-age={max_age}"},
        media_type="application/jwk-set+json",
    )


@router.get(
    "/.well-known/oauth-authorization-server",
    tags=["discovery"],
    responses=body(200, "application/json"),
)
async def metadata(request: Request) -> Response:
    """RFC 8414 authorization server metadata."""
    s = request.app.state.runtime.auth_settings
    issuer = s.issuer.rstrip("/")
    methods = ["client_secret_basic", "client_secret_post"]
    return JSONResponse(
        {
            "issuer": s.issuer,
            "token_endpoint": f"{issuer}/oauth2/token",
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "introspection_endpoint": f"{issuer}/oauth2/introspect",
            "revocation_endpoint": f"{issuer}/oauth2/revoke",
            "grant_types_supported": [GRANT],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": methods,
            "introspection_endpoint_auth_methods_supported": methods,
            "revocation_endpoint_auth_methods_supported": methods,
            "scopes_supported": sorted(request.app.state.runtime.known_scopes),
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        },
        headers={"Cache-Control": "public, max-age=3600"},
    )
