from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired

# Machine endpoints authenticate with API keys through DRF and answer 401/403
# in JSON; a browser redirect to the login page would be wrong for them.
API_PREFIXES = ("/api/", "/v1/")


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Every page needs login; the API and OTLP endpoints do their own auth."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith(API_PREFIXES):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
