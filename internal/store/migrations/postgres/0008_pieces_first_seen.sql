-- Each build asks for the newest first-seen time (pieces-summary): an index
-- answers it without reading every piece, and the count from the index alone.
CREATE INDEX pieces_first_seen ON pieces (first_seen);
