"""DM-1 notification content (pure): package #0, WSP push, WDP/SMS framing, triggers."""
