//! Diesel table definitions shared by both engines. The migrations under `db/migrations/{sqlite,
//! postgres}` create the same columns with the same types; a test compares them to this file.

diesel::table! {
    organisations (code) {
        code -> Text,
        name -> Text,
        kind -> Text,
        region -> Nullable<Text>,
        exemplar -> Bool,
        closed_on -> Nullable<Date>,
        successor_code -> Nullable<Text>,
        source -> Nullable<Text>,
        revision -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        region_code -> Nullable<Text>,
        parent_code -> Nullable<Text>,
        postcode -> Nullable<Text>,
        opened_on -> Nullable<Date>,
        ods_file -> Nullable<Text>,
    }
}

diesel::table! {
    ods_successions (id) {
        id -> BigInt,
        predecessor_code -> Text,
        successor_code -> Text,
        reason -> Nullable<Text>,
        effective_on -> Date,
        status -> Text,
        created_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
        decided_by -> Nullable<Text>,
    }
}

diesel::table! {
    icb_acting_grants (icb_code) {
        icb_code -> Text,
        granted_by -> Text,
        granted_at -> Timestamp,
    }
}

diesel::table! {
    suppliers (id) {
        id -> BigInt,
        name -> Text,
        source -> Nullable<Text>,
    }
}

diesel::table! {
    products (id) {
        id -> BigInt,
        supplier_id -> BigInt,
        name -> Text,
        edition -> Text,
        version -> Text,
        sku -> Nullable<Text>,
        category -> Text,
        released_on -> Nullable<Date>,
        mainstream_support_ends_on -> Nullable<Date>,
        extended_support_ends_on -> Nullable<Date>,
        dtac_passed -> Bool,
        mds2_supplied -> Bool,
        source -> Nullable<Text>,
        revision -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        successor_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    releases (id) {
        id -> BigInt,
        product_id -> BigInt,
        name -> Text,
        released_on -> Nullable<Date>,
        active_support_ends_on -> Nullable<Date>,
        security_support_ends_on -> Nullable<Date>,
        extended_updates_end_on -> Nullable<Date>,
        source -> Nullable<Text>,
        revision -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    lifecycle_sources (id) {
        id -> BigInt,
        product_id -> BigInt,
        release_name -> Text,
        eol_product -> Text,
        eol_release -> Text,
    }
}

diesel::table! {
    lifecycle_holds (id) {
        id -> BigInt,
        release_id -> BigInt,
        field -> Text,
        current_value -> Nullable<Date>,
        proposed_value -> Nullable<Date>,
        source -> Text,
        status -> Text,
        created_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    agreements (id) {
        id -> BigInt,
        supplier_id -> BigInt,
        reference -> Text,
        title -> Text,
        framework_reference -> Nullable<Text>,
        starts_on -> Date,
        ends_on -> Nullable<Date>,
        funding_model -> Text,
        status -> Text,
        eligible_kinds -> Text,
        source -> Nullable<Text>,
        revision -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        value_minor -> Nullable<BigInt>,
        currency -> Text,
        reseller_id -> Nullable<BigInt>,
        framework_lot -> Nullable<Text>,
        initial_term_months -> Nullable<Integer>,
        notice_urls -> Text,
        commercial_source -> Nullable<Text>,
        buyer -> Nullable<Text>,
    }
}

diesel::table! {
    agreement_extensions (id) {
        id -> BigInt,
        agreement_id -> BigInt,
        months -> Integer,
        decide_by -> Date,
        decision -> Nullable<Text>,
        decided_on -> Nullable<Date>,
        source -> Nullable<Text>,
    }
}

diesel::table! {
    entitlements (id) {
        id -> BigInt,
        agreement_id -> BigInt,
        product_id -> BigInt,
        tier -> Text,
        metric -> Text,
        seat_cap -> Nullable<BigInt>,
        seats_allocated -> BigInt,
        over_allocation_policy -> Text,
        seats_version -> BigInt,
        eligible_kinds -> Text,
        starts_on -> Date,
        ends_on -> Nullable<Date>,
        how_to_claim -> Nullable<Text>,
        source -> Nullable<Text>,
        revision -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        requires_approval -> Bool,
        per_organisation_cap -> Nullable<BigInt>,
        nhsmail_service -> Nullable<Text>,
    }
}

diesel::table! {
    obligations (id) {
        id -> BigInt,
        entitlement_id -> BigInt,
        description -> Text,
        due_on -> Nullable<Date>,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        display_name -> Text,
        role -> Text,
        organisation_code -> Nullable<Text>,
        password_hash -> Text,
        disabled -> Bool,
        token_generation -> BigInt,
        revision -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    allocations (id) {
        id -> BigInt,
        entitlement_id -> BigInt,
        organisation_code -> Text,
        quantity -> BigInt,
        claimed_quantity -> BigInt,
        status -> Text,
        reference -> Nullable<Text>,
        transferred_to_id -> Nullable<BigInt>,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    obligation_acceptances (id) {
        id -> BigInt,
        obligation_id -> BigInt,
        organisation_code -> Text,
        accepted_at -> Timestamp,
        due_on -> Nullable<Date>,
        status -> Text,
    }
}

diesel::table! {
    idempotency_keys (user_id, idempotency_key) {
        user_id -> BigInt,
        idempotency_key -> Text,
        request_fingerprint -> Text,
        created_at -> Timestamp,
        allocation_id -> Nullable<BigInt>,
        seat_request_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    sign_in_attempts (throttle_key) {
        throttle_key -> Text,
        window_started -> Timestamp,
        attempts -> Integer,
    }
}

diesel::table! {
    password_resets (user_id) {
        user_id -> BigInt,
        token_hash -> Text,
        requested_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    standards (id) {
        id -> BigInt,
        publisher_code -> Text,
        category -> Text,
        title -> Text,
        source -> Nullable<Text>,
        revision -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    standard_versions (id) {
        id -> BigInt,
        standard_id -> BigInt,
        number -> Integer,
        status -> Text,
        summary -> Nullable<Text>,
        published_at -> Nullable<Timestamp>,
        superseded_at -> Nullable<Timestamp>,
        withdrawn_at -> Nullable<Timestamp>,
        revision -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    requirements (id) {
        id -> BigInt,
        version_id -> BigInt,
        code -> Text,
        text -> Text,
        level -> Text,
        criterion -> Nullable<Text>,
        position -> Integer,
    }
}

diesel::table! {
    assessments (id) {
        id -> BigInt,
        version_id -> BigInt,
        product_id -> BigInt,
        conforms -> Bool,
        outcomes -> Text,
        evidence -> Text,
        assessed_by -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    purchases (id) {
        id -> BigInt,
        organisation_code -> Text,
        product_id -> Nullable<BigInt>,
        description -> Nullable<Text>,
        category -> Text,
        version_id -> BigInt,
        purchased_on -> Date,
        quantity -> BigInt,
        unit_cost_pence -> BigInt,
        order_reference -> Text,
        compliant -> Bool,
        supersedes_id -> Nullable<BigInt>,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    purchase_declarations (purchase_id, requirement_id) {
        purchase_id -> BigInt,
        requirement_id -> BigInt,
        met -> Bool,
        evidence -> Nullable<Text>,
    }
}

diesel::table! {
    advisories (id) {
        id -> BigInt,
        reference -> Text,
        title -> Text,
        severity -> Text,
        published_at -> Timestamp,
        remediation -> Text,
        links -> Text,
        source -> Nullable<Text>,
        revision -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    advisory_products (advisory_id, product_id) {
        advisory_id -> BigInt,
        product_id -> BigInt,
    }
}

diesel::table! {
    advisory_responses (advisory_id, organisation_code) {
        advisory_id -> BigInt,
        organisation_code -> Text,
        acknowledged_at -> Nullable<Timestamp>,
        applicable -> Nullable<Bool>,
        applicability_reason -> Nullable<Text>,
        closed_at -> Nullable<Timestamp>,
        remediation_note -> Nullable<Text>,
    }
}

diesel::table! {
    risk_acceptances (id) {
        id -> BigInt,
        organisation_code -> Text,
        product_id -> BigInt,
        compensating_controls -> Text,
        mds2_reference -> Nullable<Text>,
        expires_on -> Date,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        occurred_at -> Timestamp,
        actor_user_id -> Nullable<BigInt>,
        actor -> Text,
        action -> Text,
        entity -> Text,
        entity_id -> Text,
        organisation_code -> Nullable<Text>,
        before_state -> Nullable<Text>,
        after_state -> Nullable<Text>,
        request_id -> Nullable<Text>,
        acting_icb -> Nullable<Text>,
        transaction_id -> BigInt,
    }
}

diesel::table! {
    outbox_events (id) {
        id -> BigInt,
        kind -> Text,
        organisation_code -> Nullable<Text>,
        subject -> Text,
        summary -> Text,
        payload -> Text,
        occasion -> Nullable<Text>,
        occurred_at -> Timestamp,
        fanned_out -> Bool,
    }
}

diesel::table! {
    subscriptions (id) {
        id -> BigInt,
        user_id -> BigInt,
        organisation_code -> Nullable<Text>,
        kinds -> Text,
        channel -> Text,
        email_cadence -> Nullable<Text>,
        webhook_url -> Nullable<Text>,
        webhook_secret -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    deliveries (id) {
        id -> BigInt,
        event_id -> BigInt,
        subscription_id -> BigInt,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        leased_until -> Nullable<Timestamp>,
        leased_by -> Nullable<Text>,
        delivered_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        retry_until -> Timestamp,
    }
}

diesel::table! {
    delivery_attempts (id) {
        id -> BigInt,
        delivery_id -> BigInt,
        attempted_at -> Timestamp,
        attempted_by -> Text,
        status_code -> Nullable<Integer>,
        error -> Nullable<Text>,
        duration_ms -> BigInt,
    }
}

diesel::table! {
    email_digests (user_id, day) {
        user_id -> BigInt,
        day -> Date,
        sent_at -> Timestamp,
    }
}

diesel::table! {
    webhook_allowed_hosts (host) {
        host -> Text,
        allowed_by -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::joinable!(products -> suppliers (supplier_id));
diesel::joinable!(subscriptions -> users (user_id));
diesel::joinable!(deliveries -> outbox_events (event_id));
diesel::joinable!(deliveries -> subscriptions (subscription_id));
diesel::joinable!(delivery_attempts -> deliveries (delivery_id));
diesel::joinable!(agreements -> suppliers (supplier_id));
diesel::joinable!(agreement_extensions -> agreements (agreement_id));
diesel::joinable!(entitlements -> agreements (agreement_id));
diesel::joinable!(entitlements -> products (product_id));
diesel::table! {
    seat_requests (id) {
        id -> BigInt,
        entitlement_id -> BigInt,
        organisation_code -> Text,
        quantity -> BigInt,
        reference -> Nullable<Text>,
        status -> Text,
        reason -> Nullable<Text>,
        allocation_id -> Nullable<BigInt>,
        requested_by -> Nullable<BigInt>,
        requested_at -> Timestamp,
        decided_by -> Nullable<BigInt>,
        decided_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    product_requests (id) {
        id -> BigInt,
        organisation_code -> Text,
        product_name -> Text,
        supplier -> Text,
        version -> Nullable<Text>,
        need -> Text,
        search_text -> Nullable<Text>,
        status -> Text,
        product_id -> Nullable<BigInt>,
        reason -> Nullable<Text>,
        requested_by -> Nullable<BigInt>,
        requested_at -> Timestamp,
        decided_by -> Nullable<BigInt>,
        decided_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    nhsmail_service_periods (id) {
        id -> BigInt,
        organisation_code -> Text,
        service -> Text,
        starts_on -> Date,
        ends_on -> Nullable<Date>,
        source -> Nullable<Text>,
    }
}

diesel::table! {
    estate_snapshots (id) {
        id -> BigInt,
        organisation_code -> Text,
        source -> Text,
        taken_on -> Date,
        rows_read -> BigInt,
        rows_matched -> BigInt,
        rows_unmatched -> BigInt,
        imported_by -> Nullable<BigInt>,
        imported_at -> Timestamp,
    }
}

diesel::table! {
    estate_items (id) {
        id -> BigInt,
        snapshot_id -> BigInt,
        product_id -> BigInt,
        release_id -> Nullable<BigInt>,
        site -> Text,
        devices -> BigInt,
        users -> BigInt,
        first_seen_at -> Timestamp,
    }
}

diesel::table! {
    estate_unmatched (id) {
        id -> BigInt,
        snapshot_id -> BigInt,
        name_key -> Text,
        vendor -> Text,
        name -> Text,
        version -> Text,
        site -> Text,
        devices -> BigInt,
        users -> BigInt,
    }
}

diesel::table! {
    software_name_mappings (id) {
        id -> BigInt,
        name_key -> Text,
        product_id -> BigInt,
        mapped_by -> Nullable<BigInt>,
        mapped_at -> Timestamp,
    }
}

diesel::joinable!(estate_snapshots -> organisations (organisation_code));
diesel::joinable!(estate_items -> estate_snapshots (snapshot_id));
diesel::joinable!(estate_items -> products (product_id));
diesel::joinable!(estate_unmatched -> estate_snapshots (snapshot_id));
diesel::joinable!(software_name_mappings -> products (product_id));
diesel::joinable!(seat_requests -> entitlements (entitlement_id));
diesel::joinable!(seat_requests -> organisations (organisation_code));
diesel::joinable!(product_requests -> organisations (organisation_code));
diesel::joinable!(product_requests -> products (product_id));
diesel::joinable!(nhsmail_service_periods -> organisations (organisation_code));
diesel::joinable!(obligations -> entitlements (entitlement_id));
diesel::joinable!(obligation_acceptances -> obligations (obligation_id));
diesel::joinable!(allocations -> entitlements (entitlement_id));
diesel::joinable!(allocations -> organisations (organisation_code));
diesel::joinable!(users -> organisations (organisation_code));
diesel::joinable!(password_resets -> users (user_id));
diesel::joinable!(standards -> organisations (publisher_code));
diesel::joinable!(standard_versions -> standards (standard_id));
diesel::joinable!(requirements -> standard_versions (version_id));
diesel::joinable!(assessments -> standard_versions (version_id));
diesel::joinable!(assessments -> products (product_id));
diesel::joinable!(purchases -> standard_versions (version_id));
diesel::joinable!(purchases -> organisations (organisation_code));
diesel::joinable!(purchase_declarations -> requirements (requirement_id));
diesel::joinable!(advisory_products -> advisories (advisory_id));
diesel::joinable!(advisory_products -> products (product_id));
diesel::joinable!(risk_acceptances -> products (product_id));
diesel::joinable!(releases -> products (product_id));
diesel::joinable!(lifecycle_sources -> products (product_id));
diesel::joinable!(lifecycle_holds -> releases (release_id));

diesel::allow_tables_to_appear_in_same_query!(
    organisations,
    ods_successions,
    icb_acting_grants,
    suppliers,
    agreement_extensions,
    products,
    releases,
    lifecycle_sources,
    lifecycle_holds,
    agreements,
    entitlements,
    obligations,
    users,
    allocations,
    seat_requests,
    product_requests,
    nhsmail_service_periods,
    estate_snapshots,
    estate_items,
    estate_unmatched,
    software_name_mappings,
    obligation_acceptances,
    idempotency_keys,
    sign_in_attempts,
    password_resets,
    standards,
    standard_versions,
    requirements,
    assessments,
    purchases,
    purchase_declarations,
    advisories,
    advisory_products,
    advisory_responses,
    risk_acceptances,
    audit_events,
    outbox_events,
    subscriptions,
    deliveries,
    delivery_attempts,
    email_digests,
    webhook_allowed_hosts,
);
