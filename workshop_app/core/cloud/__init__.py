"""The cloud link: a car's telematics unit and the workshop meeting at an MQTT 5 broker.

Qt-free. ``topics`` names every topic, ``wire`` packs frame batches, ``messages`` shapes
requests and replies; both ends (the agent in the car and the workshop's python-can bus)
build on these three modules only, so the format lives in one place (see docs/cloud.md).
"""
