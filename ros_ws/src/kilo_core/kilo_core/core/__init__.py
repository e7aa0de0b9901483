"""The pure core: decision logic with no ROS, MQTT, GPIO or clock access.

Every function or method that depends on time takes ``now``: seconds on the robot's
monotonic clock, supplied by the caller. Nothing here reads a clock or does I/O.
"""
