from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    """DRF errors as ``{"error": "...", "detail": ...}`` so clients read one field."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and set(data) == {"detail"}:
        response.data = {"error": str(data["detail"])}
    else:
        response.data = {"error": "invalid input", "detail": data}
    return response
