// One schema for both backends: only types both SQLite and PostgreSQL carry
// the same way (TEXT, BIGINT, INTEGER, BOOLEAN). Instants are BIGINT UTC ms.

diesel::table! {
    organisations (id) {
        id -> Text,
        kind -> Text,
        name -> Text,
        credit_code -> Text,
        centre_code -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        org_id -> Nullable<Text>,
        username -> Text,
        email -> Text,
        display_name -> Text,
        role -> Text,
        password_hash -> Text,
        email_verified_at -> Nullable<BigInt>,
        disabled_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    email_verifications (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    login_throttle (key) {
        key -> Text,
        window_start -> BigInt,
        failures -> Integer,
        locked_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    key_challenges (id) {
        id -> Text,
        user_id -> Text,
        purpose -> Text,
        nonce -> Text,
        server_secret -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    identity_keys (id) {
        id -> Text,
        owner_id -> Text,
        purpose -> Text,
        algorithm -> Text,
        public_key -> Text,
        registered_by -> Text,
        created_at -> BigInt,
        retired_at -> Nullable<BigInt>,
        proof_statement -> Nullable<Text>,
        proof -> Nullable<Text>,
        registered_idx -> Nullable<BigInt>,
        retired_idx -> Nullable<BigInt>,
    }
}

diesel::table! {
    projects (id) {
        id -> Text,
        centre_org_id -> Text,
        tenderer_org_id -> Text,
        agent_org_id -> Nullable<Text>,
        regulator_org_id -> Text,
        code -> Text,
        name -> Text,
        category -> Text,
        must_tender_by_law -> Bool,
        description -> Text,
        created_by -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    sections (id) {
        id -> Text,
        project_id -> Text,
        code -> Text,
        name -> Text,
        description -> Text,
        state -> Text,
        deadline_at -> Nullable<BigInt>,
        published_at -> Nullable<BigInt>,
        window_secs -> BigInt,
        decryption_mode -> Text,
        threshold -> Integer,
        min_bidders -> Integer,
        grace_secs -> BigInt,
        ceiling_price_fen -> Nullable<BigInt>,
        evaluation -> Nullable<Text>,
        summary_fields -> Text,
        params_version -> Integer,
        params_json -> Nullable<Text>,
        params_hash -> Nullable<Text>,
        cancel_reason -> Nullable<Text>,
        last_seq -> BigInt,
        created_by -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    section_custodians (section_id, position) {
        section_id -> Text,
        position -> Integer,
        user_id -> Text,
    }
}

diesel::table! {
    custodian_section_keys (section_id, user_id) {
        section_id -> Text,
        user_id -> Text,
        public_key -> Text,
        identity_key_id -> Text,
        signature -> Text,
        registered_at -> BigInt,
    }
}

diesel::table! {
    amendments (id) {
        id -> Text,
        section_id -> Text,
        number -> Integer,
        kind -> Text,
        title -> Text,
        body -> Text,
        old_deadline -> BigInt,
        new_deadline -> BigInt,
        params_hash -> Text,
        created_by -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    documents (id) {
        id -> Text,
        section_id -> Text,
        amendment_id -> Nullable<Text>,
        name -> Text,
        content_type -> Text,
        size -> BigInt,
        sha256 -> Text,
        uploaded_by -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    section_registrations (id) {
        id -> Text,
        section_tag -> Text,
        member_tag -> Text,
        record -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    log_state (id) {
        id -> Integer,
        size -> BigInt,
        flushed_at -> BigInt,
    }
}

diesel::table! {
    log_queue (id) {
        id -> Text,
        item -> Text,
    }
}

diesel::table! {
    log_chains (tag) {
        tag -> Text,
        head -> Text,
    }
}

diesel::table! {
    log_nodes (level, idx) {
        level -> Integer,
        idx -> BigInt,
        hash -> Text,
    }
}

diesel::table! {
    log_leaves (idx) {
        idx -> BigInt,
        leaf -> Text,
        kind -> Text,
        section_id -> Nullable<Text>,
        at -> BigInt,
    }
}

diesel::table! {
    log_checkpoints (size) {
        size -> BigInt,
        root -> Text,
        at -> BigInt,
        signature -> Text,
    }
}

diesel::table! {
    section_params (section_id, version) {
        section_id -> Text,
        version -> Integer,
        params_json -> Text,
        params_hash -> Text,
        published_at -> BigInt,
    }
}

diesel::table! {
    submissions (id) {
        id -> Text,
        section_tag -> Text,
        bidder_tag -> Text,
        owner_tag -> Text,
        envelope_hash -> Text,
        revision -> Integer,
        state -> Text,
        record -> Text,
        progress -> Text,
        received_at -> BigInt,
        completed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    bids (envelope_hash) {
        envelope_hash -> Text,
        section_id -> Text,
        bidder -> Text,
        bid_id -> Text,
        revision -> Integer,
        status -> Text,
        signed_envelope -> Text,
        received_at -> BigInt,
        completed_at -> Nullable<BigInt>,
        receipt -> Nullable<Text>,
        withdrawal -> Nullable<Text>,
    }
}

diesel::table! {
    log_openings (leaf_idx) {
        leaf_idx -> BigInt,
        section_id -> Text,
        opening -> Text,
    }
}

diesel::table! {
    late_attempts (id) {
        id -> Text,
        section_id -> Text,
        bidder -> Text,
        envelope_hash -> Text,
        stage -> Text,
        at -> BigInt,
        log_idx -> BigInt,
    }
}

diesel::table! {
    manifests (section_id) {
        section_id -> Text,
        manifest -> Text,
        root -> Text,
        bid_count -> Integer,
        log_idx -> BigInt,
        sealed_at -> BigInt,
    }
}

diesel::table! {
    events (section_id, seq) {
        section_id -> Text,
        seq -> BigInt,
        kind -> Text,
        payload -> Text,
        actor_id -> Nullable<Text>,
        at -> BigInt,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        at -> BigInt,
        actor_id -> Nullable<Text>,
        action -> Text,
        target -> Text,
        request_id -> Nullable<Text>,
        detail -> Text,
    }
}

diesel::table! {
    jobs (id) {
        id -> Text,
        kind -> Text,
        section_id -> Text,
        due_at -> BigInt,
        state -> Text,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        lease_until -> Nullable<BigInt>,
        leased_by -> Nullable<Text>,
        done_at -> Nullable<BigInt>,
        done_by -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        kind -> Text,
        to_addr -> Text,
        subject -> Text,
        body -> Text,
        created_at -> BigInt,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        lease_until -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        sent_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(users -> organisations (org_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(sections -> projects (project_id));
diesel::joinable!(section_custodians -> sections (section_id));
diesel::joinable!(documents -> sections (section_id));
diesel::joinable!(amendments -> sections (section_id));
diesel::joinable!(events -> sections (section_id));

diesel::allow_tables_to_appear_in_same_query!(
    log_chains,
    log_queue,
    organisations,
    users,
    sessions,
    email_verifications,
    login_throttle,
    key_challenges,
    identity_keys,
    projects,
    sections,
    section_custodians,
    custodian_section_keys,
    amendments,
    documents,
    section_registrations,
    log_state,
    log_nodes,
    log_leaves,
    log_checkpoints,
    section_params,
    submissions,
    bids,
    log_openings,
    late_attempts,
    manifests,
    events,
    audit_log,
    jobs,
    outbox,
    openings,
    signins,
    key_releases,
    bid_openings,
    incidents,
    objections,
    confirmations,
    idempotency_keys,
    experts,
    evaluations,
    seats,
    eval_votes,
    eval_scores,
    report_signatures,
    publicity_objections,
    outlier_flags,
    recusals,
    clarifications,
    draw_contributions,
    draw_requests,
    centre_registrations,
);

diesel::table! {
    openings (section_id) {
        section_id -> Text,
        signin_open -> Bool,
        window_started_at -> Nullable<BigInt>,
        window_ends_at -> Nullable<BigInt>,
        paused_since -> Nullable<BigInt>,
        escrow -> Bool,
        record_json -> Nullable<Text>,
        record_hash -> Nullable<Text>,
        announced_at -> Nullable<BigInt>,
        closing_json -> Nullable<Text>,
        closing_hash -> Nullable<Text>,
        platform_signature -> Nullable<Text>,
        closed_at -> Nullable<BigInt>,
        countersigned_by -> Nullable<Text>,
        countersignature -> Nullable<Text>,
        countersigned_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    signins (id) {
        id -> Text,
        section_tag -> Text,
        member_tag -> Text,
        record -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    key_releases (section_id, custodian) {
        section_id -> Text,
        custodian -> Text,
        position -> Integer,
        sealed_secret -> Text,
        secret_key -> Nullable<Text>,
        signature -> Text,
        released_at -> BigInt,
    }
}

diesel::table! {
    bid_openings (envelope_hash) {
        envelope_hash -> Text,
        section_id -> Text,
        status -> Text,
        fault -> Nullable<Text>,
        reason -> Nullable<Text>,
        via -> Nullable<Text>,
        sealed_result -> Nullable<Text>,
        summary -> Nullable<Text>,
        bmk -> Nullable<Text>,
        decrypted_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    incidents (id) {
        id -> Text,
        section_id -> Text,
        reason -> Text,
        bidders -> Text,
        declared_by -> Text,
        declared_at -> BigInt,
        countersigned_by -> Nullable<Text>,
        countersignature -> Nullable<Text>,
        countersigned_at -> Nullable<BigInt>,
        resolved_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    objections (id) {
        id -> Text,
        section_id -> Text,
        bidder -> Text,
        raised_by -> Text,
        text -> Text,
        raised_at -> BigInt,
        answer -> Nullable<Text>,
        answered_by -> Nullable<Text>,
        answered_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    confirmations (section_id, bidder) {
        section_id -> Text,
        bidder -> Text,
        record_hash -> Text,
        signature -> Text,
        confirmed_by -> Text,
        confirmed_at -> BigInt,
    }
}

diesel::table! {
    idempotency_keys (user_id, key) {
        user_id -> Text,
        key -> Text,
        route -> Text,
        status -> Integer,
        body -> Text,
        created_at -> BigInt,
        request_hash -> Text,
    }
}

diesel::table! {
    experts (id) {
        id -> Text,
        centre -> Text,
        name -> Text,
        email -> Text,
        specialties -> Text,
        employer -> Text,
        related_orgs -> Text,
        related_people -> Text,
        available -> Bool,
        updated_at -> BigInt,
    }
}

diesel::table! {
    evaluations (section_id) {
        section_id -> Text,
        phase -> Text,
        request_json -> Text,
        parties_json -> Text,
        snapshot_json -> Text,
        snapshot_hash -> Text,
        seed_commitment -> Text,
        sealed_seed -> Text,
        draw_json -> Text,
        k_coefficient -> Nullable<Text>,
        outcome_json -> Nullable<Text>,
        report_json -> Nullable<Text>,
        report_hash -> Nullable<Text>,
        signing_ends_at -> Nullable<BigInt>,
        published_at -> Nullable<BigInt>,
        publicity_ends_at -> Nullable<BigInt>,
        paused_since -> Nullable<BigInt>,
        awarded_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    seats (section_id, expert_id) {
        section_id -> Text,
        expert_id -> Text,
        specialty -> Text,
        position -> Integer,
        status -> Text,
        token_hash -> Nullable<Text>,
        expert_key -> Nullable<Text>,
        pass_json -> Nullable<Text>,
        called_at -> Nullable<BigInt>,
        responded_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    eval_votes (section_id, expert_id, bid) {
        section_id -> Text,
        expert_id -> Text,
        bid -> Text,
        pass -> Bool,
        reason -> Nullable<Text>,
        statement -> Text,
        signature -> Text,
        at -> BigInt,
    }
}

diesel::table! {
    eval_scores (section_id, expert_id, bid, item) {
        section_id -> Text,
        expert_id -> Text,
        bid -> Text,
        item -> Text,
        points -> BigInt,
        statement -> Text,
        signature -> Text,
        at -> BigInt,
    }
}

diesel::table! {
    report_signatures (section_id, expert_id) {
        section_id -> Text,
        expert_id -> Text,
        agree -> Bool,
        dissent -> Nullable<Text>,
        deemed -> Bool,
        statement -> Nullable<Text>,
        signature -> Nullable<Text>,
        at -> BigInt,
    }
}

diesel::table! {
    publicity_objections (id) {
        id -> Text,
        section_id -> Text,
        bidder -> Text,
        raised_by -> Text,
        text -> Text,
        raised_at -> BigInt,
        answer_due_at -> BigInt,
        answer -> Nullable<Text>,
        answered_by -> Nullable<Text>,
        answered_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    recusals (section_id, expert_id) {
        section_id -> Text,
        expert_id -> Text,
        statement -> Text,
        signature -> Text,
        recused_at -> BigInt,
    }
}

diesel::table! {
    outlier_flags (section_id, expert_id, bid) {
        section_id -> Text,
        expert_id -> Text,
        bid -> Text,
        total -> BigInt,
        median -> BigInt,
        flagged_at -> BigInt,
        reason -> Nullable<Text>,
        statement -> Nullable<Text>,
        signature -> Nullable<Text>,
        confirmed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    clarifications (id) {
        id -> Text,
        section_id -> Text,
        expert_id -> Text,
        bid -> Text,
        bidder -> Text,
        question -> Text,
        statement -> Text,
        signature -> Text,
        asked_at -> BigInt,
        due_at -> BigInt,
        answer -> Nullable<Text>,
        answer_statement -> Nullable<Text>,
        answer_signature -> Nullable<Text>,
        answered_by -> Nullable<Text>,
        answered_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    draw_contributions (section_id, party) {
        section_id -> Text,
        party -> Text,
        public_key -> Text,
        statement -> Text,
        signature -> Text,
        committed_at -> BigInt,
        value -> Nullable<Text>,
        revealed_at -> Nullable<BigInt>,
        withheld_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    draw_requests (section_id) {
        section_id -> Text,
        request_json -> Text,
        parties_json -> Text,
        snapshot_json -> Text,
        seed_commitment -> Text,
        sealed_seed -> Text,
        contributors -> Text,
        reveals_due_at -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    centre_registrations (statement_hash) {
        statement_hash -> Text,
        code -> Text,
        name -> Text,
        public_key -> Text,
        signature -> Text,
        idx -> BigInt,
        registered_at -> BigInt,
    }
}
