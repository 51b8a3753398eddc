"""A tiny API used only to exercise the error plumbing independently of the apps."""

from django.urls import include, path
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ApplicationError


class Echo(APIView):
    class InputSerializer(serializers.Serializer):
        quantity = serializers.IntegerField(min_value=1, max_value=1000)
        lines = serializers.ListField(
            child=serializers.DictField(child=serializers.IntegerField()), required=False
        )

    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(data.validated_data)


class Teapot(ApplicationError):
    code = "TEAPOT"
    status_code = 409
    message = "I am a teapot"


class Domain(APIView):
    def get(self, request):
        raise Teapot(details={"status": "brewing"})


class Boom(APIView):
    def get(self, request):
        raise RuntimeError("secret internals")


urlpatterns = [
    path("api/v1/echo/", Echo.as_view()),
    path("api/v1/domain/", Domain.as_view()),
    path("api/v1/boom/", Boom.as_view()),
    path("", include("config.urls")),
]
