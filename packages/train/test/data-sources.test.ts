import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FoxgateError } from '@foxgate/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import {
  loadDailyDialog,
  openTextCorpus,
  parseDailyDialog,
  parseJsonlDialogs,
  readDailyDialog,
  readDocument,
  readJsonlDialogs,
  splitDocuments,
} from '../src/index.js';
import { sharedData } from './data-shared.js';

const tmp = mkdtempSync(join(tmpdir(), 'foxgate-data-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('text corpora', () => {
  it('a folder: every non-empty file is a document, sorted by path, read on demand', () => {
    const dir = join(tmp, 'folder');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'b.txt'), 'bee\n');
    writeFileSync(join(dir, 'a.txt'), 'ay\n');
    writeFileSync(join(dir, 'sub', 'c.txt'), 'sea ☃\n');
    writeFileSync(join(dir, 'empty.txt'), '');
    writeFileSync(join(dir, '.hidden'), 'no');
    const c = openTextCorpus(dir);
    expect(c.segmented).toBe(false);
    expect(c.documents.map((d) => d.name)).toEqual(['a.txt', 'b.txt', 'sub/c.txt']);
    expect(c.documents.map(readDocument)).toEqual(['ay\n', 'bee\n', 'sea ☃\n']);
    expect(readDocument('plain')).toBe('plain');
  });

  it('the gutenberg folder: 14 books as documents, byte ranges = file sizes', () => {
    const dir = sharedData('gutenberg');
    const c = openTextCorpus(dir);
    expect(c.documents.length).toBe(14);
    expect(c.documents[0].name).toBe('austen-emma.txt');
    for (const d of c.documents) expect(d.end - d.start).toBe(statSync(d.path).size);
    expect(readDocument(c.documents[0]).startsWith('[Emma by Jane Austen 1816]')).toBe(true);
  });

  it('a single file is cut at line ends into ~64 KiB segments that tile it exactly', () => {
    const file = sharedData('tinyshakespeare/input.txt');
    const c = openTextCorpus(file);
    const size = statSync(file).size;
    expect(c.segmented).toBe(true);
    expect(c.documents.length).toBeGreaterThanOrEqual(Math.floor(size / 65536));
    expect(c.documents.length).toBeLessThanOrEqual(Math.ceil(size / 65536));
    const text = readFileSync(file, 'utf8');
    let pos = 0;
    for (const [k, d] of c.documents.entries()) {
      expect(d.name).toBe(`${file}#${k}`);
      expect(d.start).toBe(pos);
      const s = readDocument(d);
      if (k + 1 < c.documents.length) {
        expect(s.endsWith('\n')).toBe(true);
        expect(d.end - d.start).toBeGreaterThanOrEqual(65536);
        expect(s.slice(0, -1).lastIndexOf('\n')).toBeLessThan(65536 - 1); // first line end at or after 64 KiB
      }
      pos = d.end;
    }
    expect(pos).toBe(size);
    expect(c.documents.map(readDocument).join('')).toBe(text);
  });

  it('segments by hand: cut after the first newline at or after each step', () => {
    const f = join(tmp, 'lines.txt');
    writeFileSync(f, 'aaaa\nbb\ncccccc\nd\n');
    const c = openTextCorpus(f, { segmentBytes: 4 });
    expect(c.documents.map(readDocument)).toEqual(['aaaa\n', 'bb\ncccccc\n', 'd\n']);
    const one = openTextCorpus(f, { segmentBytes: 1000 });
    expect(one.segmented).toBe(false);
    expect(one.documents.length).toBe(1);
  });

  it('errors name the path', () => {
    expect(() => openTextCorpus(join(tmp, 'nope'))).toThrow(`openTextCorpus: ${join(tmp, 'nope')} does not exist`);
    const empty = join(tmp, 'emptydir');
    mkdirSync(empty);
    writeFileSync(join(empty, 'x.txt'), '');
    expect(() => openTextCorpus(empty)).toThrow(`openTextCorpus: ${empty} holds no text (no non-empty files)`);
    expect(() => openTextCorpus(tmp, { segmentBytes: 0 })).toThrow(
      'openTextCorpus: segmentBytes must be an integer in [1, 2147483647], got 0',
    );
  });
});

describe('splitDocuments', () => {
  const items = Array.from({ length: 50 }, (_, i) => `doc${i}`);

  it('is deterministic per seed, disjoint, complete and keeps the order', () => {
    const a = splitDocuments(items, { seed: 3 });
    const b = splitDocuments(items, { seed: 3 });
    expect(a).toEqual(b);
    expect(a.validation.length).toBe(5);
    expect(a.train.length).toBe(45);
    expect(new Set([...a.train, ...a.validation]).size).toBe(50);
    expect(a.train.filter((d) => a.validation.includes(d))).toEqual([]);
    const idx = (xs: string[]) => xs.map((x) => Number(x.slice(3)));
    expect(idx(a.train)).toEqual([...idx(a.train)].sort((x, y) => x - y));
    const c = splitDocuments(items, { seed: 4 });
    expect(c.validation).not.toEqual(a.validation);
  });

  it('holds out at least one and at most n-1 documents', () => {
    expect(splitDocuments(['a', 'b'], { validationFraction: 0.01 }).validation.length).toBe(1);
    expect(splitDocuments(['a', 'b'], { validationFraction: 0.99 }).train.length).toBe(1);
    const shakes = openTextCorpus(sharedData('tinyshakespeare/input.txt'));
    const s = splitDocuments(shakes.documents);
    expect(s.validation.length).toBe(Math.round(shakes.documents.length * 0.1));
  });

  it('rejects a corpus it cannot split', () => {
    expect(() => splitDocuments(['only'])).toThrow('splitDocuments: a split needs at least 2 documents, got 1');
    expect(() => splitDocuments(items, { validationFraction: 1 })).toThrow('splitDocuments: validationFraction must be in (0, 1), got 1');
    expect(() => splitDocuments(items, { seed: 1.5 })).toThrow('splitDocuments: seed must be an integer, got 1.5');
  });
});

describe('dialog sources', () => {
  it('DailyDialog: the three real splits with their published counts', () => {
    const dir = sharedData('dailydialog');
    const counts = (split: 'train' | 'validation' | 'test') => {
      const ds = loadDailyDialog(dir, split);
      return [ds.length, ds.reduce((n, d) => n + d.turns.length, 0)];
    };
    expect(counts('train')).toEqual([11118, 87171]);
    expect(counts('validation')).toEqual([1000, 8069]);
    expect(counts('test')).toEqual([1000, 7740]);
    const v = loadDailyDialog(dir, 'validation');
    expect(v[0].id).toBe(0);
    expect(v[0].turns.every((t) => t === t.trim() && !t.includes('__eou__'))).toBe(true);
  });

  it('DailyDialog by hand, and its errors with file:line', () => {
    expect(parseDailyDialog('Hi . __eou__ Hello ! __eou__ \n\nBye __eou__\n')).toEqual([
      { id: 0, turns: ['Hi .', 'Hello !'] },
      { id: 1, turns: ['Bye'] },
    ]);
    expect(() => parseDailyDialog('Hi . __eou__\nno marker here\n', 'dd.txt')).toThrow(
      'readDailyDialog: dd.txt:2: no __eou__ (each utterance must end with __eou__; is this a DailyDialog file?)',
    );
    expect(() => parseDailyDialog('Hi __eou__ trailing', 'dd.txt')).toThrow(
      'readDailyDialog: dd.txt:1: text after the last __eou__: "trailing"',
    );
    expect(() => parseDailyDialog('\n\n', 'dd.txt')).toThrow('readDailyDialog: dd.txt holds no dialogs');
    expect(() => loadDailyDialog(sharedData('gutenberg'), 'train')).toThrow('dialogues_train.txt does not exist');
    const plain = sharedData('tinyshakespeare/input.txt');
    expect(() => readDailyDialog(plain)).toThrow(`readDailyDialog: ${plain}:1: no __eou__`);
    expect(() => loadDailyDialog(sharedData('dailydialog'), 'dev' as never)).toThrow(
      'loadDailyDialog: split must be "train", "validation" or "test", got "dev"',
    );
  });

  it('JSONL: turns, ids, speaker labels numbered by first appearance', () => {
    const f = join(tmp, 'd.jsonl');
    writeFileSync(
      f,
      [
        '{"turns": ["hi", "yo", "ok"]}',
        '',
        '{"id": "x7", "turns": ["a", "b", "c"], "speakers": ["bob", "ann", "bob"]}',
        '{"turns": ["a", "b"], "speakers": [1, 0]}',
      ].join('\n'),
    );
    expect(readJsonlDialogs(f)).toEqual([
      { id: 0, turns: ['hi', 'yo', 'ok'] },
      { id: 'x7', turns: ['a', 'b', 'c'], speakers: [0, 1, 0] },
      { id: 2, turns: ['a', 'b'], speakers: [1, 0] },
    ]);
  });

  it('JSONL errors name file:line', () => {
    expect(() => parseJsonlDialogs('{"turns": ["a"]}\n{"turns": ["a",', 'f.jsonl')).toThrow(
      /^readJsonlDialogs: f\.jsonl:2: not valid JSON \(/,
    );
    expect(() => parseJsonlDialogs('[1]', 'f.jsonl')).toThrow('readJsonlDialogs: f.jsonl:1: expected an object like {"turns": ["…", "…"]}');
    expect(() => parseJsonlDialogs('{"turns": [1]}', 'f.jsonl')).toThrow(
      'readJsonlDialogs: f.jsonl:1: "turns" must be an array of strings',
    );
    expect(() => parseJsonlDialogs('{"turns": ["a"], "speakers": []}', 'f.jsonl')).toThrow(
      'readJsonlDialogs: f.jsonl:1: "speakers" must be an array with one entry per turn (1)',
    );
    expect(() => parseJsonlDialogs('{"turns": ["a","b"], "speakers": [0, "x"]}', 'f.jsonl')).toThrow('"speakers" must be all strings');
    expect(() => parseJsonlDialogs('\n', 'f.jsonl')).toThrow('readJsonlDialogs: f.jsonl holds no dialogs');
    expect(() => readJsonlDialogs(join(tmp, 'missing.jsonl'))).toThrow(FoxgateError);
    expect(() => readJsonlDialogs(join(tmp, 'missing.jsonl'))).toThrow(`readJsonlDialogs: ${join(tmp, 'missing.jsonl')} does not exist`);
  });
});
