"""The post-mortem API: read it, export its Markdown (the page's export), save sections (the same service
as the editor's Save button and autosave), start it, move its status, attach traces and track action
items (the same services as the page's buttons)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.permissions import IsResponder, IsViewer
from core.actors import Actor
from core.api import ERRORS, error, service_error
from incidents.models import ActionItem, Incident, PostMortem
from incidents.postmortems import selectors, services
from incidents.postmortems.services import ACTION_TITLE_MAX
from incidents.selectors import incident_get
from traces.models import Trace
from traces.selectors.runs import trace_get_by_ref


class PostMortemSectionsSaveSerializer(serializers.Serializer):
    sections = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        help_text="section key -> Markdown body; sections not named keep theirs",
    )
    loaded = serializers.DictField(
        child=serializers.CharField(max_length=64),
        required=False,
        default=dict,
        help_text="section key -> the `hash` of the body you started from: a section whose body still has "
        "that hash was not touched and is not written (someone else may have saved it since)",
    )


class PostMortemSectionSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    body = serializers.CharField()
    hash = serializers.CharField(help_text="send it back as `loaded` with your next save")


class PostMortemSectionsSavedSerializer(serializers.Serializer):
    written = serializers.ListField(child=serializers.CharField(), help_text="the sections whose body changed")
    sections = PostMortemSectionSerializer(many=True)
    empty_sections = serializers.ListField(child=serializers.CharField())
    publishable = serializers.BooleanField(help_text="every section written and the incident classified")


class PostMortemSectionsApi(APIView):
    permission_classes = [IsResponder]

    @extend_schema(
        operation_id="postmortems_sections_save",
        summary="Save post-mortem sections (responder): all or nothing, untouched sections left as stored",
        request=PostMortemSectionsSaveSerializer,
        responses={200: PostMortemSectionsSavedSerializer, **ERRORS},
        tags=["incidents"],
    )
    def post(self, request, number: int):
        try:
            incident = incident_get(number=number)
        except Incident.DoesNotExist:
            return error(f"no incident INC-{number}", 404)
        postmortem = selectors.postmortem_get(incident=incident)
        if postmortem is None:
            return error(f"INC-{number} has no post-mortem yet", 404)
        data = PostMortemSectionsSaveSerializer(data=request.data)
        if not data.is_valid():
            return error("invalid input", 400, data.errors)
        try:
            written = services.postmortem_sections_save(
                postmortem=postmortem,
                bodies=data.validated_data["sections"],
                loaded=data.validated_data["loaded"],
                actor=Actor.from_request(request),
            )
        except ValidationError as exc:
            return service_error(exc)
        needs = selectors.postmortem_publish_needs(postmortem=postmortem)
        sections = [{**s, "hash": services.postmortem_body_hash(s.get("body", ""))} for s in postmortem.sections]
        return Response(
            PostMortemSectionsSavedSerializer(
                {
                    "written": written,
                    "sections": sections,
                    "empty_sections": needs.empty_sections,
                    "publishable": needs.ready,
                }
            ).data
        )


# --- read and export -------------------------------------------------------------------------------


class PostMortemReadSectionSerializer(PostMortemSectionSerializer):
    prompt = serializers.CharField(allow_blank=True, default="", help_text="the question the section answers")


class AttachedTraceSerializer(serializers.Serializer):
    trace_id = serializers.CharField()
    agent = serializers.CharField(source="agent.slug")
    status = serializers.CharField()
    started_at = serializers.DateTimeField()
    flagged_span_id = serializers.CharField(allow_blank=True)


class ActionItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    owner = serializers.CharField(source="owner.username", allow_null=True, default=None)
    due_date = serializers.DateField(allow_null=True)
    done_at = serializers.DateTimeField(allow_null=True)


class PostMortemSerializer(serializers.Serializer):
    incident = serializers.IntegerField(source="incident.number")
    status = serializers.ChoiceField(PostMortem.Status.choices)
    template = serializers.CharField(source="template.slug", allow_null=True, default=None)
    author = serializers.CharField(source="author.username", allow_null=True, default=None)
    due_at = serializers.DateTimeField(allow_null=True)
    published_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField()
    sections = PostMortemReadSectionSerializer(many=True, help_text="bodies are Markdown")
    attached_traces = AttachedTraceSerializer(many=True)
    action_items = ActionItemSerializer(many=True)
    empty_sections = serializers.ListField(child=serializers.CharField())
    publishable = serializers.BooleanField(help_text="every section written and the incident classified")


def _postmortem_or_404(number: int) -> tuple[Incident, PostMortem] | Response:
    try:
        incident = incident_get(number=number)
    except Incident.DoesNotExist:
        return error(f"no incident INC-{number}", 404)
    postmortem = selectors.postmortem_get(incident=incident)
    if postmortem is None:
        return error(f"INC-{number} has no post-mortem yet", 404)
    return incident, postmortem


class PostMortemApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(
        operation_id="postmortems_read",
        summary="Read an incident's post-mortem: sections, attached traces, action items, status",
        responses={200: PostMortemSerializer, 404: OpenApiResponse(description="unknown incident or no post-mortem")},
        tags=["incidents"],
    )
    def get(self, request: Request, number: int) -> Response:
        found = _postmortem_or_404(number)
        if isinstance(found, Response):
            return found
        incident, postmortem = found
        return Response(_postmortem_data(incident, postmortem))


def _postmortem_data(incident: Incident, postmortem: PostMortem) -> Any:
    """The post-mortem as ``GET …/postmortem`` shows it (also the answer to every write)."""
    needs = selectors.postmortem_publish_needs(postmortem=postmortem)
    sections = [
        {**s, "body": s.get("body") or "", "hash": services.postmortem_body_hash(s.get("body", ""))}
        for s in postmortem.sections
    ]
    data = {
        "incident": incident,
        "status": postmortem.status,
        "template": postmortem.template,
        "author": postmortem.author,
        "due_at": postmortem.due_at,
        "published_at": postmortem.published_at,
        "updated_at": postmortem.updated_at,
        "sections": sections,
        "attached_traces": list(postmortem.attached_traces.all()),
        "action_items": list(postmortem.action_items.all()),
        "empty_sections": needs.empty_sections,
        "publishable": needs.ready,
    }
    return PostMortemSerializer(data).data


class MarkdownRenderer(BaseRenderer):
    """``text/markdown`` for a client that asks for it; an error then reads as one line of text."""

    media_type = "text/markdown"
    format = "md"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if isinstance(data, dict):
            return str(data.get("error", data)).encode()
        return str(data or "").encode()


class PostMortemExportApi(APIView):
    permission_classes = [IsViewer]
    renderer_classes = [JSONRenderer, MarkdownRenderer]

    @extend_schema(
        operation_id="postmortems_export",
        summary="The post-mortem as Markdown: the same text as the page's export",
        responses={
            (200, "text/markdown"): OpenApiTypes.STR,
            404: OpenApiResponse(description="unknown incident or no post-mortem"),
        },
        tags=["incidents"],
    )
    def get(self, request: Request, number: int) -> Response | HttpResponse:
        found = _postmortem_or_404(number)
        if isinstance(found, Response):
            return found
        incident, postmortem = found
        text = selectors.postmortem_markdown(incident=incident, postmortem=postmortem)
        response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{incident.ref}-postmortem.md"'
        return response


# --- writes: the same services as the post-mortem page's buttons -----------------------------------


def _incident_or_404(number: int) -> Incident | Response:
    try:
        return incident_get(number=number)
    except Incident.DoesNotExist:
        return error(f"no incident INC-{number}", 404)


def _read(incident: Incident, postmortem: PostMortem, *, status: int = 200) -> Response:
    postmortem.refresh_from_db()
    return Response(_postmortem_data(incident, postmortem), status=status)


class PostMortemStartSerializer(serializers.Serializer):
    template = serializers.SlugField(
        required=False, help_text="a template's slug; default: the template for the incident's severity"
    )


class PostMortemStartApi(APIView):
    permission_classes = [IsResponder]

    @extend_schema(
        operation_id="postmortems_start",
        summary="Start the incident's post-mortem from a template (responder); its linked traces are attached",
        request=PostMortemStartSerializer,
        responses={201: PostMortemSerializer, **ERRORS},
        tags=["incidents"],
    )
    def post(self, request: Request, number: int) -> Response:
        incident = _incident_or_404(number)
        if isinstance(incident, Response):
            return incident
        data = PostMortemStartSerializer(data=request.data)
        if not data.is_valid():
            return error("invalid input", 400, data.errors)
        templates = selectors.postmortem_template_list()
        slug = data.validated_data.get("template")
        if slug:
            template = templates.filter(slug=slug).first()
            if template is None:
                return error("invalid input", 400, {"template": [f"no template {slug!r}"]})
        else:
            template = selectors.postmortem_template_default(incident=incident, templates=templates)
        try:
            postmortem = services.postmortem_start(
                incident=incident, template=template, actor=Actor.from_request(request)
            )
        except ValidationError as exc:
            return service_error(exc)
        return _read(incident, postmortem, status=201)


def _postmortem_and_input(
    number: int, serializer_class: type[serializers.Serializer], data: Any
) -> tuple[Incident, PostMortem, dict[str, Any]] | Response:
    """The incident's post-mortem and the validated body, or the 404/400 to answer (nothing written)."""
    found = _postmortem_or_404(number)
    if isinstance(found, Response):
        return found
    body = serializer_class(data=data)
    if not body.is_valid():
        return error("invalid input", 400, body.errors)
    return (*found, body.validated_data)


class PostMortemStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(PostMortem.Status.choices)


class PostMortemStatusApi(APIView):
    permission_classes = [IsResponder]

    @extend_schema(
        operation_id="postmortems_status",
        summary="Send the post-mortem to review, back to draft, or publish it (every section written, classified)",
        request=PostMortemStatusSerializer,
        responses={200: PostMortemSerializer, **ERRORS},
        tags=["incidents"],
    )
    def post(self, request: Request, number: int) -> Response:
        found = _postmortem_and_input(number, PostMortemStatusSerializer, request.data)
        if isinstance(found, Response):
            return found
        incident, postmortem, valid = found
        try:
            services.postmortem_status_set(
                postmortem=postmortem, status=valid["status"], actor=Actor.from_request(request)
            )
        except ValidationError as exc:
            return service_error(exc)
        return _read(incident, postmortem)


class PostMortemTraceSerializer(serializers.Serializer):
    trace = serializers.CharField(max_length=200, help_text="a trace id, or `<trace id>@<agent>`")


class PostMortemTracesApi(APIView):
    permission_classes = [IsResponder]

    @extend_schema(
        operation_id="postmortems_traces_attach",
        summary="Attach a trajectory to the post-mortem (attaching twice changes nothing)",
        request=PostMortemTraceSerializer,
        responses={200: PostMortemSerializer, **ERRORS},
        tags=["incidents"],
    )
    def post(self, request: Request, number: int) -> Response:
        return self._change(request, number, services.postmortem_trace_attach)

    @extend_schema(
        operation_id="postmortems_traces_detach",
        summary="Detach a trajectory from the post-mortem",
        request=PostMortemTraceSerializer,
        responses={200: PostMortemSerializer, **ERRORS},
        tags=["incidents"],
    )
    def delete(self, request: Request, number: int) -> Response:
        return self._change(request, number, services.postmortem_trace_detach)

    def _change(self, request: Request, number: int, service: Any) -> Response:
        found = _postmortem_and_input(number, PostMortemTraceSerializer, request.data)
        if isinstance(found, Response):
            return found
        incident, postmortem, valid = found
        try:
            trace = trace_get_by_ref(ref=valid["trace"])
        except Trace.DoesNotExist:
            return error("invalid input", 400, {"trace": [f"no trace {valid['trace']!r}"]})
        try:
            service(postmortem=postmortem, trace=trace, actor=Actor.from_request(request))
        except ValidationError as exc:
            return service_error(exc)
        return _read(incident, postmortem)


class ActionItemAddSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=ACTION_TITLE_MAX)
    kind = serializers.ChoiceField(ActionItem.Kind.choices)
    owner = serializers.CharField(required=False, allow_null=True, default=None, help_text="a username")
    due_date = serializers.DateField(required=False, allow_null=True, default=None)


class ActionItemsApi(APIView):
    permission_classes = [IsResponder]

    @extend_schema(
        operation_id="postmortems_action_items_add",
        summary="Add an action item (an engineering artifact: eval case, canary, circuit breaker, version pin)",
        request=ActionItemAddSerializer,
        responses={201: ActionItemSerializer, **ERRORS},
        tags=["incidents"],
    )
    def post(self, request: Request, number: int) -> Response:
        found = _postmortem_and_input(number, ActionItemAddSerializer, request.data)
        if isinstance(found, Response):
            return found
        _, postmortem, valid = found
        owner = None
        if valid["owner"]:
            owner = get_user_model().objects.filter(username=valid["owner"], is_active=True).first()
            if owner is None:
                return error("invalid input", 400, {"owner": [f"no active user {valid['owner']!r}"]})
        try:
            item = services.action_item_add(
                postmortem=postmortem,
                title=valid["title"],
                kind=valid["kind"],
                owner=owner,
                due_date=valid["due_date"],
                actor=Actor.from_request(request),
            )
        except ValidationError as exc:
            return service_error(exc)
        return Response(ActionItemSerializer(item).data, status=201)


class ActionItemStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(ActionItem.Status.choices)


class ActionItemStatusApi(APIView):
    permission_classes = [IsResponder]

    @extend_schema(
        operation_id="postmortems_action_items_status",
        summary="Set an action item's status (done stamps when)",
        request=ActionItemStatusSerializer,
        responses={200: ActionItemSerializer, **ERRORS},
        tags=["incidents"],
    )
    def post(self, request: Request, number: int, item_id: int) -> Response:
        found = _postmortem_or_404(number)
        if isinstance(found, Response):
            return found
        _, postmortem = found
        item = postmortem.action_items.filter(pk=item_id).first()
        if item is None:
            return error(f"no action item {item_id} on INC-{number}'s post-mortem", 404)
        data = ActionItemStatusSerializer(data=request.data)
        if not data.is_valid():
            return error("invalid input", 400, data.errors)
        services.action_item_status_set(
            item=item, status=data.validated_data["status"], actor=Actor.from_request(request)
        )
        return Response(ActionItemSerializer(item).data)
