"""``/search/?q=``: one box over incidents, post-mortems, alerts and traces."""

from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from incidents.search.selectors import MAX_QUERY, SearchError, clean_query, search


@require_GET
def search_page(request):
    raw = request.GET.get("q", "")
    result, error, q = None, None, raw[: MAX_QUERY + 50]
    try:
        q = clean_query(raw)
        result = search(q=q)
    except SearchError as exc:
        error = str(exc)
    if result is not None and result.redirect:
        return redirect(result.redirect)
    status = 400 if error else 200
    return render(
        request,
        "incidents/search_results.html",
        {"q": q, "result": result, "error": error, "max_query": MAX_QUERY},
        status=status,
    )
