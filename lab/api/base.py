"""How every API view authenticates and answers.

Authentication: `Authorization: Bearer <token>` (lab.services.tokens), or the browser session.
CSRF: a bearer token cannot be sent by another site's form, so token requests skip the CSRF check;
session-authenticated state changes are checked exactly as a page POST is.
Errors are JSON: 400 (with errors by field), 401, 403, 404, 405.
"""
from __future__ import annotations

import json
from functools import wraps

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from lab.services.tokens import token_user

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors or {}


def error(status: int, message: str, errors: dict | None = None) -> JsonResponse:
    body = {"error": message}
    if errors:
        body["errors"] = errors
    return JsonResponse(body, status=status)


def _csrf_failure(request):
    check = CsrfViewMiddleware(lambda req: None)
    check.process_request(request)
    return check.process_view(request, None, (), {})


def api_view(methods: tuple[str, ...] = ("GET",), *, public: bool = False):
    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                response = error(405, f"method {request.method} not allowed; use {', '.join(methods)}")
                response["Allow"] = ", ".join(methods)
                return response
            header = request.META.get("HTTP_AUTHORIZATION", "")
            if header.lower().startswith("bearer "):
                user = token_user(header[7:].strip())
                if user is None:
                    return error(401, "invalid or revoked token")
                request.user = user
            elif request.user.is_authenticated:
                if request.method not in SAFE_METHODS and _csrf_failure(request) is not None:
                    return error(403, "CSRF check failed: send the csrftoken cookie's value as X-CSRFToken, or use a bearer token")
            elif not public:
                return error(401, "authentication required: POST /api/v1/auth/token, then send Authorization: Bearer <token>")
            try:
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return error(exc.status, exc.message, exc.errors)
            except Http404:
                return error(404, "not found")
            except PermissionDenied as exc:
                return error(403, str(exc) or "your role does not allow this")
            except ValidationError as exc:
                errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
                return error(400, "invalid request", errors)

        wrapper.api_methods = methods
        return wrapper

    return decorate


def body(request) -> dict:
    """The request's JSON object (or form fields)."""
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError as exc:
            raise ApiError(400, f"body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "body must be a JSON object")
        return data
    return {key: request.POST.get(key) for key in request.POST}
