from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agents.models import Agent
from core.actors import Actor
from core.forms import form_errors_add
from core.roles import RESPONDER, role_required
from demo.gamedays import selectors, services
from demo.gamedays.launch import gameday_launch
from demo.gamedays.models import Gameday, GamedayMode, GamedayStatus, Scenario


class GamedayForm(forms.Form):
    scenario = forms.ChoiceField(choices=Scenario.choices)
    agent = forms.ModelChoiceField(
        queryset=Agent.objects.order_by("slug"),
        to_field_name="slug",
        required=False,
        empty_label="a new drill agent",
    )
    mode = forms.ChoiceField(choices=GamedayMode.choices, initial=GamedayMode.DRILL)


def _list_context(form: GamedayForm) -> dict[str, object]:
    return {"form": form, "gamedays": selectors.gameday_list()}


@require_http_methods(["GET", "POST"])
def gameday_list(request):
    if request.method == "GET":
        return render(request, "gamedays/gameday_list.html", _list_context(GamedayForm()))
    if not Actor.from_request(request).can(RESPONDER):
        raise PermissionDenied("Starting a gameday needs the responder role.")
    form = GamedayForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            gameday = gameday_launch(
                scenario=data["scenario"], agent=data["agent"], mode=data["mode"], actor=Actor.from_request(request)
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, f"{gameday.ref} started on {gameday.agent.slug}: the clock is running.")
            return redirect("gamedays:gameday-detail", pk=gameday.pk)
    return render(request, "gamedays/gameday_list.html", _list_context(form), status=400)


@require_GET
def gameday_detail(request, pk: int):
    try:
        gameday = selectors.gameday_get(pk=pk)
    except Gameday.DoesNotExist:
        raise Http404("No gameday with this id.") from None
    context = {
        "gameday": gameday,
        "running": gameday.status == GamedayStatus.RUNNING,
        "rows": selectors.gameday_scorecard(gameday=gameday),
        "comparison": selectors.gameday_comparison(gameday=gameday),
    }
    if request.htmx:
        return render(request, "gamedays/_scorecard.html", context)
    return render(request, "gamedays/gameday_detail.html", context)


@require_POST
@role_required(RESPONDER)
def gameday_end(request, pk: int):
    try:
        gameday = selectors.gameday_get(pk=pk)
    except Gameday.DoesNotExist:
        raise Http404("No gameday with this id.") from None
    cancel = request.POST.get("cancel") == "1"
    try:
        services.gameday_end(gameday=gameday, actor=Actor.from_request(request), cancel=cancel)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{gameday.ref} {'cancelled' if cancel else 'finished'}.")
    return redirect("gamedays:gameday-detail", pk=pk)
