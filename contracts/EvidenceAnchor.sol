// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/**
 * @title EvidenceAnchor
 * @notice Public, append-only registry of Merkle batch roots for the Tally Ledger count.
 *
 * The ledger seals submitted tally records into batches, numbered 1, 2, 3, ... exactly
 * like the `batches` table of its database. Each batch is one Merkle tree, built the way
 * OpenZeppelin's merkle-tree library builds it (leaves hashed twice, sibling pairs sorted),
 * plus a manifest on IPFS that lists every record of the batch.
 * Anchoring writes the root here once; after that anyone can check that a record belongs
 * to the batch with {verify} and a proof from the ledger, without trusting the ledger.
 *
 * Rules (each enforced below, each with its own error):
 *  - ids start at {FIRST_BATCH_ID} (1) and go up by one: batch `n + 1` only after batch `n`;
 *  - a batch is written once and never changes; there is no function to edit or delete;
 *  - a zero root, an empty batch or an empty manifest CID is refused;
 *  - only accounts holding {ANCHORER_ROLE} may anchor. {DEFAULT_ADMIN_ROLE} (meant to be a
 *    multisig) grants and revokes that role and cannot do anything else.
 *
 * Storage versus log. Storage keeps only what a contract needs: the root of each batch
 * (one slot, for {verify}) and the next id (for the ordering rule). Everything else about a
 * batch, its record count and manifest CID, is in its {BatchAnchored} event, and the block
 * number, block hash, timestamp and transaction come with that log. Logs are committed in
 * the block's receipts root, so they are as tamper-proof as storage; they are just not
 * readable by contracts. Find the event of batch `n` with `eth_getLogs` on this address,
 * topic 1 = `n`. This keeps {anchor} at about 56,500 gas whatever the batch size; storing
 * the record count and anchoring block/time would add a second slot (about 22,000 gas),
 * and the CID string three more.
 *
 * This contract holds no ether and no tokens. Coupon contracts (ERC-20 / ERC-721) live in
 * their own files and are not part of it.
 */
contract EvidenceAnchor is AccessControl {
    /// @notice The role allowed to call {anchor}: `keccak256("ANCHORER_ROLE")`.
    bytes32 public constant ANCHORER_ROLE = keccak256("ANCHORER_ROLE");

    /// @notice The id of the first batch. Ids are the ledger database's batch ids.
    uint256 public constant FIRST_BATCH_ID = 1;

    /// @notice Names this contract's interface and rules; a change gets a new name.
    string public constant VERSION = "tally-evidence-anchor-v1";

    /// @notice `anchor` was called for `given` while the next id to anchor is `expected`.
    error BatchOutOfOrder(uint256 expected, uint256 given);

    /// @notice Batch `batchId` has not been anchored (ids below {FIRST_BATCH_ID} never are).
    error UnknownBatch(uint256 batchId);

    /// @notice `anchor` was called for `batchId` with a zero root.
    error ZeroRoot(uint256 batchId);

    /// @notice `anchor` was called for `batchId` with a record count of zero.
    error EmptyBatch(uint256 batchId);

    /// @notice `anchor` was called for `batchId` with an empty manifest CID.
    error EmptyManifestCid(uint256 batchId);

    /// @notice The constructor was given the zero address for `role`.
    error ZeroAccount(bytes32 role);

    /// @notice Batch `batchId` of `recordCount` records was anchored with `root`; its
    /// manifest is `manifestCid`.
    /// @dev Topics: [signature, batchId, root]. Emitted right after the root is stored.
    event BatchAnchored(uint256 indexed batchId, bytes32 indexed root, uint256 recordCount, string manifestCid);

    mapping(uint256 batchId => bytes32 root) private _roots;
    uint256 private _nextBatchId;

    /**
     * @notice Creates the registry with no batches; the first batch to anchor is {FIRST_BATCH_ID}.
     * @dev Requirements: neither address is zero, else {ZeroAccount}.
     * Events: {RoleGranted} for each role.
     * @param admin receives {DEFAULT_ADMIN_ROLE}: manages who may anchor (use a multisig)
     * @param anchorer receives {ANCHORER_ROLE}: the ledger's anchoring key
     */
    constructor(address admin, address anchorer) {
        if (admin == address(0)) revert ZeroAccount(DEFAULT_ADMIN_ROLE);
        if (anchorer == address(0)) revert ZeroAccount(ANCHORER_ROLE);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ANCHORER_ROLE, anchorer);
        // Written here, not lazily, so that every {anchor} pays the same gas.
        _nextBatchId = FIRST_BATCH_ID;
    }

    /**
     * @notice Records the root of batch `batchId` for good.
     * @dev Requirements:
     *  - the caller holds {ANCHORER_ROLE}, else {AccessControlUnauthorizedAccount};
     *  - `batchId == nextBatchId()`, else {BatchOutOfOrder} (a batch already anchored gives
     *    the same error, so a retried transaction fails instead of writing twice);
     *  - `root != 0`, else {ZeroRoot}; `recordCount != 0`, else {EmptyBatch};
     *  - `manifestCid` is not empty, else {EmptyManifestCid}.
     * Events: {BatchAnchored}.
     * @param batchId must equal {nextBatchId}
     * @param root the batch's Merkle root
     * @param recordCount the number of records (leaves) in the batch
     * @param manifestCid the CID (text form, e.g. `bafy...`) of the batch manifest on IPFS
     */
    function anchor(
        uint256 batchId,
        bytes32 root,
        uint64 recordCount,
        string calldata manifestCid
    ) external onlyRole(ANCHORER_ROLE) {
        uint256 expected = _nextBatchId;
        if (batchId != expected) revert BatchOutOfOrder(expected, batchId);
        if (root == bytes32(0)) revert ZeroRoot(batchId);
        if (recordCount == 0) revert EmptyBatch(batchId);
        if (bytes(manifestCid).length == 0) revert EmptyManifestCid(batchId);

        _roots[batchId] = root;
        _nextBatchId = expected + 1;
        emit BatchAnchored(batchId, root, recordCount, manifestCid);
    }

    /**
     * @notice Returns the Merkle root of anchored batch `batchId`.
     * @dev Requirements: the batch has been anchored, else {UnknownBatch}.
     * Its record count and manifest CID are in its {BatchAnchored} event.
     */
    function batch(uint256 batchId) external view returns (bytes32 root) {
        return _anchoredRoot(batchId);
    }

    /**
     * @notice The id the next {anchor} call must use; {FIRST_BATCH_ID} while nothing is anchored.
     * @dev The number of anchored batches is `nextBatchId() - FIRST_BATCH_ID`. No requirements.
     */
    function nextBatchId() external view returns (uint256) {
        return _nextBatchId;
    }

    /**
     * @notice Tells whether `leaf` is in batch `batchId`, given its Merkle `proof`.
     * @dev Requirements: the batch has been anchored, else {UnknownBatch}.
     * Uses OpenZeppelin's `MerkleProof` (sorted pairs), which matches OpenZeppelin's
     * merkle-tree library and `ledger.core.merkle`.
     * Caution: this proves only that the 32 bytes `leaf` lie on the batch's tree, and an
     * inner node with its shorter path passes too. Compute `leaf` yourself from the record
     * (the double hash); never accept a bare leaf hash from someone else.
     * @param batchId the batch to check against
     * @param leaf the leaf hash exactly as the tree stores it (with the merkle-tree library:
     *        `keccak256(bytes.concat(keccak256(abi.encode(...))))`), not the record itself
     * @param proof the sibling hashes from the leaf up to the root
     * @return true when the proof leads from `leaf` to the batch's anchored root
     */
    function verify(uint256 batchId, bytes32 leaf, bytes32[] calldata proof) external view returns (bool) {
        return MerkleProof.verifyCalldata(proof, _anchoredRoot(batchId), leaf);
    }

    function _anchoredRoot(uint256 batchId) private view returns (bytes32 root) {
        root = _roots[batchId];
        if (root == bytes32(0)) revert UnknownBatch(batchId);
    }
}
