"""What reaches the node through a hub: pulled, opened, judged, stored once, acknowledged."""
