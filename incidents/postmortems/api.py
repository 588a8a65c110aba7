"""The post-mortem API: save sections, the same service as the editor's Save button and autosave."""

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.permissions import IsResponder
from core.actors import Actor
from core.api import ERRORS, error, service_error
from incidents.models import Incident
from incidents.postmortems import selectors, services
from incidents.selectors import incident_get


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
