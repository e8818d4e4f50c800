-- A recusal (回避) is the expert's signed statement, kept whole so that the
-- transcript carries it and `kaibiao verify` re-checks it (the log holds
-- its hash).
CREATE TABLE recusals (
    section_id TEXT NOT NULL,
    expert_id  TEXT NOT NULL,
    statement  TEXT NOT NULL,
    signature  TEXT NOT NULL,
    recused_at BIGINT NOT NULL,
    PRIMARY KEY (section_id, expert_id)
);
