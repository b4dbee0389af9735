/// The client's local inspector (docs/inspector.md): a bounded history of
/// webhooks in an embedded SQLite store, a live page and a JSON API, replay
/// and edit-and-replay with optional re-signing.
enum InspectorModule {}
