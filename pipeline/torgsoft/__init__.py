"""The accounting side: connection, SQL mapping, catalog reader, document writer, export files."""
