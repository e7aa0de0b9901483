"""Who publishes a topic, by node name, as the ROS graph reports it."""

from __future__ import annotations

from rclpy.node import Node

from kilo_core import contract

# rmw_dds_common's placeholder for an endpoint discovered before the participant
# message that names its node; it resolves moments later, so it is "not yet known".
UNRESOLVED_NODE_NAME = '_NODE_NAME_UNKNOWN_'


def publisher_names(node: Node, topic: contract.Topic) -> list[str]:
    return sorted(info.node_name for info in node.get_publishers_info_by_topic(topic.ros))


def resolved(names: list[str]) -> bool:
    """Every publisher found so far has its node name."""
    return UNRESOLVED_NODE_NAME not in names
