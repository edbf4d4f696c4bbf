"""Ports: typing.Protocol interfaces the domain is written against. Nothing else lives here."""
