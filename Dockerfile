FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
COPY sdk ./sdk
RUN pip install --no-cache-dir . ./sdk
COPY . .
RUN DATABASE_URL=postgres://build@localhost/none REDIS_URL=redis://localhost:6379/0 SECRET_KEY=build \
    python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["gunicorn", "firebreak.wsgi", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--workers", "3", "--threads", "8"]
