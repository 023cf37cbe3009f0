# The same server as `make run`, listening on all interfaces inside the container.
FROM python:3.11-slim
WORKDIR /srv/playground
COPY pyproject.toml README.md ./
COPY app ./app
COPY models ./models
COPY templates ./templates
COPY static ./static
RUN pip install --no-cache-dir -e .
ENV PLAYGROUND_ALLOWED_HOSTS='["*"]'
EXPOSE 8000
CMD ["playground", "serve", "--host", "0.0.0.0", "--port", "8000"]
