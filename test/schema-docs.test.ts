import { isInputObjectType, isInterfaceType, isObjectType, type GraphQLSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { schema } from '../src/graphql/schema.ts';

// GraphiQL's docs pane and every client's autocompletion show these descriptions: they are
// the only manual a newcomer reads. A field or argument added without one fails here.

const ROOTS = ['Query', 'Mutation', 'Subscription'];

const undocumented = (text: string | null | undefined) => !text?.trim();

/** Every root field, every argument of any field, and every input field that says nothing. */
function missingDescriptions(s: GraphQLSchema): string[] {
  const missing: string[] = [];
  for (const type of Object.values(s.getTypeMap())) {
    if (type.name.startsWith('__')) continue;
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (ROOTS.includes(type.name) && undocumented(field.description)) missing.push(`${type.name}.${field.name}`);
        for (const arg of field.args) {
          if (undocumented(arg.description)) missing.push(`${type.name}.${field.name}(${arg.name})`);
        }
      }
    }
    if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (undocumented(field.description)) missing.push(`${type.name}.${field.name}`);
      }
    }
  }
  return missing;
}

describe('the schema documents itself', () => {
  it('describes every query, mutation and subscription field, every argument and every input field', () => {
    expect(missingDescriptions(schema)).toEqual([]);
  });
});
