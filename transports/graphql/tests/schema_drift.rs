//! `docs/schema.graphql` is the schema the server serves: this fails when
//! they drift. Regenerate with
//! `cargo run -p parlor-server -- --print-schema > docs/schema.graphql`.

#[test]
fn docs_schema_matches_the_served_schema() {
    let documented = include_str!("../../../docs/schema.graphql");
    let served = parlor_graphql::sdl();
    assert!(
        documented == served,
        "docs/schema.graphql is out of date; regenerate it with \
         `cargo run -p parlor-server -- --print-schema > docs/schema.graphql`"
    );
    // The contract's names, as written (docs/contract.md §6).
    for needle in [
        "type Query {",
        "type Mutation {",
        "type Subscription {",
        "room(id: ID!): Room",
        "messages(roomId: ID!, afterSeq: Int, beforeSeq: Int, limit: Int): [Entry!]!",
        "reserveSeat(roomId: ID!, create: CreateRoom): Reservation!",
        "sendMessage(roomId: ID!, clientId: String!, body: String, data: JSON): Entry!",
        "rooms(prefix: String! = \"\", after: ID, limit: Int): RoomPage!",
        "updateRoom(roomId: ID!, title: String, capacity: Int, retention: RetentionInput): Room!",
        "closeRoom(roomId: ID!, purge: Boolean! = false): Boolean!",
        "kickUser(roomId: ID!, userId: ID!, reason: String): Boolean!",
        "banUser(roomId: ID!, userId: ID!, until: String, reason: String): Boolean!",
        "unbanUser(roomId: ID!, userId: ID!): Boolean!",
        "addModerator(roomId: ID!, userId: ID!): Boolean!",
        "removeModerator(roomId: ID!, userId: ID!): Boolean!",
        "leaveRoom(roomId: ID!): Boolean!",
        "joinRoom(ticket: String!, afterSeq: Int): RoomEvent!",
        "union RoomEvent = Joined | Entry | Receipt",
        // Edits, redactions, retention, read markers (issue 22).
        "editMessage(roomId: ID!, seq: Int!, body: String, data: JSON, clientId: String): Entry!",
        "redactMessage(roomId: ID!, seq: Int!, reason: String): Entry!",
        "markRead(roomId: ID!, seq: Int!): ReadState!",
        "readMarker(roomId: ID!, userId: ID!): ReadState!",
        "\tEDIT\n",
        "\tREDACTION\n",
        "\ttargetSeq: Int\n",
        "\teditedAt: String\n",
        "\tredacted: Boolean!\n",
        "\tfirstSeq: Int!\n",
        "\tresumed: Boolean!\n",
        // Big rooms (issue 24).
        "\tmemberCount: Int!\n",
        "\tretention: Retention\n",
        "\tlastReadSeq: Int\n",
        "\tunread: Int\n",
        "\tlastReadSeq: Int!\n",
        "type Receipt {",
        "type ReadState {",
        "type Retention {",
        "input RetentionInput {",
        "\tmaxEntries: Int\n",
        "\tmaxAge: String\n",
        "\tat: String!\n",
    ] {
        assert!(served.contains(needle), "schema lacks `{needle}`");
    }
}
